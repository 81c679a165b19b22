"""Domain errors raised by the service layer.

Services are called from views, the API and Celery tasks alike, so they must
not raise HTTP-specific exceptions. Each error carries the HTTP status the API
maps it to, a stable machine-readable ``code`` and, for input problems, the
offending ``field`` so the API can point at it.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class InvalidInput(ServiceError):
    """The caller sent something that can never work as sent."""


class Forbidden(ServiceError):
    status = 403
    code = "permission_denied"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """The request is valid but not in the object's current state (e.g. remove while running)."""

    status = 409
    code = "conflict"


class HostUnavailable(ServiceError):
    """The agent cannot be reached now; retrying later may work."""

    status = 503
    code = "host_unavailable"


class AgentError(ServiceError):
    """The agent answered, but with an error."""

    status = 502
    code = "agent_error"


class Gone(ServiceError):
    """The thing existed but was removed on purpose (e.g. an expired archive)."""

    status = 410
    code = "gone"


class TooLarge(ServiceError):
    """The request body is over the configured limit."""

    status = 413
    code = "too_large"


class ServiceUnavailable(ServiceError):
    """A service Berth depends on (Redis) does not answer; retrying later may work."""

    status = 503
    code = "unavailable"
