"""Teams own containers; membership roles decide who may only look and who may act."""

from django.conf import settings
from django.db import models

from apps.teams.choices import Role


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="unique_team_member"),
        ]
        ordering = ["team__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} is {self.role} of {self.team}"


class TeamPolicy(models.Model):
    """What a team may use; checked by apps.teams.policy wherever containers are created.

    A missing row means the defaults below: any host, no quotas, no bind mounts,
    no privileged options. ``None`` in a quota means "no limit".
    """

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, primary_key=True, related_name="policy"
    )
    # False: every host; True: only ``allowed_hosts`` (possibly none).
    restrict_hosts = models.BooleanField(default=False)
    allowed_hosts = models.ManyToManyField("hosts.Host", blank=True, related_name="+")
    max_containers = models.PositiveIntegerField(null=True, blank=True)
    max_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_cpus = models.FloatField(null=True, blank=True)
    # Absolute host paths under which bind mounts are allowed; empty: no bind mounts.
    bind_mount_roots = models.JSONField(default=list, blank=True)
    allow_privileged = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"policy of {self.team}"
