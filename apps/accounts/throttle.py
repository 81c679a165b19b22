"""Login throttling: too many failed password logins lock the name and the address for a while.

Counters are rows in the database (shared by every web process): failures per
username and per client address within ``BERTH_LOGIN_WINDOW`` seconds. A locked
name or address is refused before the password is even checked.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from apps.accounts.models import LoginFailures


def _keys(username, ip) -> list[str]:
    keys = []
    if username:
        keys.append("user:" + hashlib.sha256(str(username).lower().encode()).hexdigest()[:32])
    if ip:
        keys.append(f"ip:{ip}"[:100])
    return keys


def _limit(key: str) -> int:
    return settings.BERTH_LOGIN_MAX_FAILURES * (4 if key.startswith("ip:") else 1)


def retry_after(username, ip) -> int:
    """Seconds until a login may be tried again (0: not locked)."""
    now = timezone.now()
    rows = LoginFailures.objects.filter(key__in=_keys(username, ip), window_ends__gt=now)
    waits = [
        (row.window_ends - now).total_seconds() for row in rows if row.failures >= _limit(row.key)
    ]
    return max(int(max(waits)) + 1, 1) if waits else 0


def failed(username, ip) -> None:
    now = timezone.now()
    window = timedelta(seconds=settings.BERTH_LOGIN_WINDOW)
    with transaction.atomic():
        LoginFailures.objects.filter(window_ends__lte=now).delete()
        for key in _keys(username, ip):
            counted = LoginFailures.objects.filter(key=key, window_ends__gt=now).update(
                failures=F("failures") + 1
            )
            if not counted:
                _start_window(key, now + window)


def _start_window(key: str, ends) -> None:
    try:
        with transaction.atomic():
            LoginFailures.objects.create(key=key, failures=1, window_ends=ends)
    except IntegrityError:  # a concurrent failure started it
        LoginFailures.objects.filter(key=key).update(failures=F("failures") + 1)


def succeeded(username, ip) -> None:
    """A complete login clears the name's count (not the address's: one good account
    must not reset guessing at others from the same place)."""
    LoginFailures.objects.filter(key__in=_keys(username, None)).delete()


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


class ThrottledModelBackend(ModelBackend):
    """Django's password check, refused while the name or address is locked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None or password is None:
            return None
        ip = client_ip(request)
        if retry_after(username, ip):
            # PermissionDenied makes django.contrib.auth.authenticate stop and fail.
            raise PermissionDenied("too many failed logins")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            failed(username, ip)
        # A right password alone does not clear the count: the login form does, once the
        # second factor passed too (else the count could never reach the limit for codes).
        return user
