"""Networks on hosts, as teams see them, and what agents report of containers' addresses.

A network is a bridge on one host, owned by one team. ``name`` is the team's name
for it; ``engine_name`` is its name on the host (``<team slug>.<name>``), so two
teams may both have a network called "backend" on one host without meeting:
a container joins only networks of its own team, and names resolve per network.
"""

from django.db import models
from django.utils import timezone

from apps.networks.choices import DRIVER


class Network(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="networks")
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="networks")
    name = models.CharField(max_length=64)
    engine_name = models.CharField(max_length=128)
    driver = models.CharField(max_length=16, default=DRIVER)
    bridge = models.CharField(max_length=15)
    subnet = models.CharField(max_length=43)
    gateway = models.CharField(max_length=39)
    internal = models.BooleanField(default=False)
    labels = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "host__name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "host", "name"], name="unique_team_network"),
            models.UniqueConstraint(fields=["host", "engine_name"], name="unique_host_network"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"

    def as_spec(self, **extra) -> dict:
        """The network as the agent's spec names it (docs/agent-protocol.md)."""
        return {"name": self.engine_name, "bridge": self.bridge, "subnet": self.subnet,
                "gateway": self.gateway, **extra}


class ContainerNetwork(models.Model):
    """A container's addresses and published ports, as its agent last reported them."""

    container = models.OneToOneField(
        "containers.Container", on_delete=models.CASCADE, primary_key=True,
        related_name="network_state",
    )
    seq = models.BigIntegerField(default=0)
    mode = models.CharField(max_length=140, blank=True)
    # {engine network name: {"ip", "prefixlen", "gateway", "mac", "aliases", "ifname"}}
    networks = models.JSONField(default=dict, blank=True)
    ports = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"network of {self.container_id[:12]}"
