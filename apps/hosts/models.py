"""Hosts are site-wide: every team may schedule containers on any host."""

from django.db import models
from django.utils import timezone

from apps.hosts.choices import HostStatus


class Host(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kernel = models.CharField(max_length=200, blank=True)
    cgroup_version = models.CharField(max_length=16, blank=True)  # "v1", "v2" or "hybrid"
    cpus = models.PositiveIntegerField(null=True, blank=True)
    memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    status = models.CharField(
        max_length=16, choices=HostStatus.choices, default=HostStatus.OFFLINE, db_index=True
    )
    last_heartbeat = models.DateTimeField(null=True, blank=True)
    registered_at = models.DateTimeField(default=timezone.now)
    labels = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        return self.status == HostStatus.ONLINE
