"""The one place that creates, checks and revokes API tokens and admin users."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.audit import record
from berth.errors import InvalidInput

# Writing last_used on every request would turn reads into writes; once a
# minute is precise enough for "is this token still in use?".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_token(
    user, *, name: str = "", read_only: bool = False, expires_days: int | None = None
) -> tuple[ApiToken, str]:
    """Create a token and return it with its key; the key is never retrievable again."""
    if expires_days is not None and expires_days <= 0:
        raise InvalidInput("expires_days must be a positive number of days", field="expires_days")
    key = secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(days=expires_days) if expires_days else None
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=key[:8],
        key_hash=hash_key(key),
        read_only=read_only,
        expires=expires,
    )
    details = {"name": name, "read_only": read_only, "expires": expires}
    record("token.create", token, user=user, details=details, object_type="apitoken")
    return token, key


def find_token(key: str) -> ApiToken | None:
    return ApiToken.objects.select_related("user").filter(key_hash=hash_key(key)).first()


def touch_token(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


def revoke_token(token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(revoked=True)
    token.revoked = True
    record("token.revoke", token, details={"prefix": token.prefix})


@dataclass(frozen=True)
class AdminResult:
    username: str
    created: bool
    password: str | None


@transaction.atomic
def ensure_admin(username: str = "admin", password: str | None = None) -> AdminResult:
    """Make sure a superuser and the ``default`` team exist; safe to run on every start.

    ``password`` (from BERTH_ADMIN_PASSWORD) is applied to an existing user as
    well, so an operator who lost the password can reset it by redeploying.
    """
    from apps.teams.services import ensure_team_owner

    User = get_user_model()
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        password = password or secrets.token_urlsafe(15)
        user = User.objects.create_superuser(username=username, email="", password=password)
    elif password:
        user.set_password(password)
        user.save(update_fields=["password"])
    ensure_team_owner("default", user)
    return AdminResult(username=username, created=created, password=password if created else None)
