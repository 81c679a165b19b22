"""Users and their API tokens.

A custom user model from the first migration, because swapping it later is one
of the few Django changes that cannot be migrated cleanly.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class User(AbstractUser):
    pass


class ApiToken(models.Model):
    """A long-lived credential for scripts and the CLI.

    Only ``sha256(key)`` is stored: a leaked database must not hand out working
    keys. ``prefix`` lets a user tell their tokens apart in listings.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=8)
    key_hash = models.CharField(max_length=64, unique=True)
    read_only = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)
    expires = models.DateTimeField(null=True, blank=True)
    last_used = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name or 'unnamed'}) of {self.user}"

    def is_expired(self, now=None) -> bool:
        return self.expires is not None and self.expires <= (now or timezone.now())


class TotpDevice(models.Model):
    """A TOTP second factor for browser login (RFC 6238, 30 s steps, 6 digits).

    The shared secret is encrypted under SECRET_KEY (berth.crypto). ``last_step``
    refuses a code twice, so one seen over a shoulder cannot be replayed.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp"
    )
    secret_encrypted = models.TextField()
    confirmed = models.BooleanField(default=False)
    last_step = models.BigIntegerField(default=0)
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"TOTP of {self.user} ({'on' if self.confirmed else 'pending'})"


class LoginFailures(models.Model):
    """Failed password logins of one username (hashed) or one client address in a window."""

    key = models.CharField(max_length=100, unique=True)
    failures = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.failures} failed logins of {self.key}"
