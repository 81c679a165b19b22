"""Hosts are site-wide; a team's policy (apps.teams.policy) may narrow which it uses."""

from django.conf import settings
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
    # No new containers are placed on a cordoned host; its running ones stay.
    cordoned = models.BooleanField(default=False)
    # Redis ACL user the agent connects as ("" for an agent started with the shared URL).
    broker_user = models.CharField(max_length=100, blank=True)
    # The key its agent signs messages with (berth.agent_auth), encrypted under SECRET_KEY;
    # "" for a host that never joined with a token (its messages are not signed).
    signing_key_encrypted = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        return self.status == HostStatus.ONLINE


class JoinToken(models.Model):
    """A one-time secret a site admin creates so a new host can join.

    Only ``sha256(key)`` is stored. A token is used up by the first join; it may
    be bound to a host name (``host_name``), else the joining agent names itself.
    """

    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    host_name = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    host = models.ForeignKey(
        Host, on_delete=models.SET_NULL, null=True, blank=True, related_name="join_tokens"
    )
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"join token {self.prefix}… ({self.name or self.host_name or 'any host'})"
