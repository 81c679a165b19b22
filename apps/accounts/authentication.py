"""``Authorization: Token <key>`` / ``Bearer <key>`` authentication for the API."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS

from apps.accounts.choices import TOKEN_KEYWORDS
from apps.accounts.services import find_token, touch_token


class ApiTokenAuthentication(BaseAuthentication):
    """Checks the token and its restrictions in one place.

    The read-only check lives here rather than in a permission class so that
    no view can forget it: every API request is authenticated first.
    """

    def authenticate(self, request):
        key = self._key_from_header(request)
        if key is None:
            return None
        token = find_token(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        self._check_usable(token)
        if token.read_only and request.method not in SAFE_METHODS:
            raise exceptions.PermissionDenied(
                f"This token is read-only; it cannot be used for {request.method} requests."
            )
        touch_token(token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # A WWW-Authenticate header makes DRF answer 401 (not 403) to anonymous requests.
        return 'Token realm="api"'

    @staticmethod
    def _key_from_header(request) -> str | None:
        parts = get_authorization_header(request).split()
        keyword = parts[0].decode(errors="replace").lower() if parts else ""
        if keyword not in {word.lower() for word in TOKEN_KEYWORDS}:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Invalid Authorization header; expected 'Token <key>' or 'Bearer <key>'."
            )
        try:
            return parts[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token characters.") from None

    @staticmethod
    def _check_usable(token) -> None:
        if token.revoked:
            raise exceptions.AuthenticationFailed("Token has been revoked.")
        if token.is_expired():
            raise exceptions.AuthenticationFailed("Token has expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User is inactive.")
