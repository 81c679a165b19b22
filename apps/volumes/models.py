"""Volumes on hosts, as teams see them.

A row is one volume on one host, owned by one team. ``name`` is the team's
name for it; ``engine_name`` is the directory name on the host
(``<team slug>.<name>``), so two teams may both have a volume called "data"
on the same host without meeting.
"""

from django.db import models
from django.utils import timezone


class Volume(models.Model):
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="volumes")
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="volumes")
    name = models.CharField(max_length=64)
    engine_name = models.CharField(max_length=128)
    labels = models.JSONField(default=dict, blank=True)
    driver = models.CharField(max_length=32, default="local")
    # Made for an image's declared volume (or `-v /path`): removed by `rm -v`, and by prune.
    anonymous = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    size = models.PositiveBigIntegerField(null=True, blank=True)  # bytes; None: not asked yet
    size_updated = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name", "host__name"]
        constraints = [
            models.UniqueConstraint(fields=["team", "host", "name"], name="unique_team_volume"),
            models.UniqueConstraint(fields=["host", "engine_name"], name="unique_host_volume"),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.host}"
