"""Who a Docker API request acts as.

On the unix socket (root only, mode 0600) requests act as the first active
superuser: a site admin, as root on a Docker host is. On TCP every request
carries a Berth API token, as ``X-Berth-Token: <key>`` (put it in the docker
CLI's ``config.json`` under ``HttpHeaders``) or ``Authorization: Token <key>``
/ ``Bearer <key>``; the token's user and their teams scope what it sees.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model

from apps.accounts.choices import TOKEN_KEYWORDS
from apps.accounts.services import find_token, touch_token
from apps.dockerapi.errors import DockerError

TOKEN_HEADER = "x-berth-token"
READ_METHODS = frozenset({"GET", "HEAD"})


def token_key(headers: dict[str, str]) -> str | None:
    key = headers.get(TOKEN_HEADER, "").strip()
    if key:
        return key
    scheme, _, value = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() in {word.lower() for word in TOKEN_KEYWORDS} and value.strip():
        return value.strip()
    return None


def user_for_token(key: str | None, method: str):
    """(user, token) for the key, or a 401/403 DockerError."""
    if key is None:
        raise DockerError(
            401,
            "authentication required: send a Berth API token as 'X-Berth-Token: <key>' "
            '(docker CLI: "HttpHeaders" in config.json)',
        )
    token = find_token(key)
    if token is None:
        raise DockerError(401, "invalid Berth API token")
    if token.revoked:
        raise DockerError(401, "this Berth API token has been revoked")
    if token.is_expired():
        raise DockerError(401, "this Berth API token has expired")
    if not token.user.is_active:
        raise DockerError(401, "the user of this Berth API token is inactive")
    if token.read_only and method not in READ_METHODS:
        raise DockerError(403, f"this token is read-only; it cannot be used for {method}")
    touch_token(token)
    return token.user, token


def local_admin():
    user = get_user_model().objects.filter(is_active=True, is_superuser=True).order_by("pk").first()
    if user is None:
        raise DockerError(
            503, "no active superuser to act as on the unix socket; run manage.py ensure_admin"
        )
    return user
