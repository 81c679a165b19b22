"""Images as reported by each host, and the registries teams pull from and push to.

An Image row means "this host can run this reference now, and this team (or,
with no team, every team) may use it". A reference pulled by two teams on one
host has one row per team; an image the host had on its own (bootstrapped,
found at registration) is a shared system row.
"""

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Image(models.Model):
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="images")
    # NULL: a system image, usable by every team.
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="images"
    )
    reference = models.CharField(max_length=512)
    digest = models.CharField(max_length=100, blank=True)
    image_id = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    repo_digests = models.JSONField(default=list, blank=True)  # ["name@sha256:..."]
    history = models.JSONField(default=list, blank=True)  # the image config's history
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reference", "host__name"]
        constraints = [
            models.UniqueConstraint(
                fields=["host", "reference", "team"], name="unique_host_reference_team"
            ),
            # NULLs never clash in a unique index, so system rows need their own rule.
            models.UniqueConstraint(
                fields=["host", "reference"],
                condition=Q(team__isnull=True),
                name="unique_host_system_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} on {self.host}"


class Registry(models.Model):
    """Where a team's images come from and go to; ``host`` is the key agents look up.

    The password is stored encrypted (berth.crypto) and never leaves the
    control plane except inside the task that needs it.
    """

    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="registries")
    name = models.CharField(max_length=100)
    url = models.CharField(max_length=500)  # "https://registry.example:5000"
    host = models.CharField(max_length=255)  # "registry.example:5000", as in image references
    username = models.CharField(max_length=200, blank=True)
    password_encrypted = models.TextField(blank=True)
    insecure = models.BooleanField(default=False)  # plain HTTP or unverified TLS
    mirrors = models.JSONField(default=list, blank=True)  # ["http://127.0.0.1:5001", ...]
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "registries"
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_registry_name_per_team"),
            models.UniqueConstraint(fields=["team", "host"], name="unique_registry_host_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.host})"

    @property
    def has_password(self) -> bool:
        return bool(self.password_encrypted)
