"""Joining a host: a site admin creates a join token, the new host's agent trades it once
for its own broker credentials (``apps.hosts.broker_acl``) and a host row.

Tokens are stored hashed, expire, are used up by their first join and can be
revoked. A token bound to a host name can only join that name; an unbound
token cannot take over the name of a host that already exists (that would let
a token holder impersonate it), only create a new host.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit import record
from apps.hosts import broker_acl
from apps.hosts.models import Host, JoinToken
from apps.teams.services import is_site_admin
from berth.crypto import encrypt_text
from berth.errors import Conflict, Forbidden, InvalidInput

DEFAULT_TTL_HOURS = 24
MAX_TTL_HOURS = 24 * 30
HOST_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})$")


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_host_name(name) -> str:
    if not isinstance(name, str) or not HOST_NAME.match(name):
        raise InvalidInput(
            "a host name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="name",
        )
    return name


@transaction.atomic
def create_join_token(
    user, *, name: str = "", host_name: str = "", ttl_hours: int = DEFAULT_TTL_HOURS
) -> tuple[JoinToken, str]:
    """A new token and its key (shown once). Site admins only."""
    if not is_site_admin(user):
        raise Forbidden("only site admins may create join tokens")
    if host_name:
        check_host_name(host_name)
    if not isinstance(ttl_hours, int) or not 1 <= ttl_hours <= MAX_TTL_HOURS:
        raise InvalidInput(f"ttl_hours must be 1-{MAX_TTL_HOURS}", field="ttl_hours")
    key = "bjt_" + secrets.token_urlsafe(32)
    token = JoinToken.objects.create(
        name=name,
        prefix=key[4:12],
        key_hash=_hash(key),
        host_name=host_name,
        created_by=user,
        expires=timezone.now() + timedelta(hours=ttl_hours),
    )
    record("host.join_token_create", token, details={"host_name": host_name, "name": name})
    return token, key


@transaction.atomic
def revoke_join_token(user, token: JoinToken) -> None:
    if not is_site_admin(user):
        raise Forbidden("only site admins may revoke join tokens")
    JoinToken.objects.filter(pk=token.pk).update(revoked=True)
    token.revoked = True
    record("host.join_token_revoke", token)


@dataclass(frozen=True)
class Joined:
    host: Host
    broker_url: str
    queue: str
    signing_key: str  # the agent signs its messages with it (berth.agent_auth)


def join(key, name) -> Joined:
    """Use up the token, create (or re-key) the host and its broker user.

    Every failure says only "invalid join token" when it is about the token, so
    a caller cannot probe which tokens exist.
    """
    if not isinstance(key, str) or not key:
        raise Forbidden("invalid join token", code="invalid_join_token")
    name = check_host_name(name)
    with transaction.atomic():
        token = _claim(key, name)
        host = _host_for(token, name)
        JoinToken.objects.filter(pk=token.pk).update(host=host)
        password, signing_key = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        user = broker_acl.user_name(host.name)
        Host.objects.filter(pk=host.pk).update(
            broker_user=user, signing_key_encrypted=encrypt_text(signing_key)
        )
        host.broker_user = user
        creator = token.created_by.username if token.created_by else ""
        details = {"token": token.prefix, "token_created_by": creator}
        record("host.join", host, via="join_token", details=details)
    # Outside the transaction: Redis is not transactional with the database, and a
    # failure here leaves a used token and a host without a broker user, which a new
    # token fixes (the error says so).
    broker_acl.provision(host.name, password)
    return Joined(host, broker_acl.url_for(host.name, password), f"host.{host.name}", signing_key)


def _claim(key: str, name: str) -> JoinToken:
    """Compare-and-set the token as used; only one join can win it."""
    now = timezone.now()
    token = JoinToken.objects.filter(key_hash=_hash(key)).first()
    usable = (
        token is not None and not token.revoked and token.used_at is None and token.expires > now
    )
    if not usable:
        raise Forbidden("invalid join token", code="invalid_join_token")
    if token.host_name and token.host_name != name:
        raise Forbidden(
            f"this join token is for host {token.host_name}, not {name}",
            code="invalid_join_token",
        )
    claimed = JoinToken.objects.filter(pk=token.pk, used_at__isnull=True).update(used_at=now)
    if not claimed:
        raise Forbidden("invalid join token", code="invalid_join_token")
    return token


def _host_for(token: JoinToken, name: str) -> Host:
    host = Host.objects.select_for_update().filter(name=name).first()
    if host is None:
        return Host.objects.create(name=name)
    if token.host_name != name:
        raise Conflict(
            f"host {name} exists already; joining it again needs a token created for it (host_name)"
        )
    return host
