"""The request being handled, so services can record who acted without being passed it.

A middleware sets it for each HTTP request; Celery tasks and management
commands have none, and their events say "system" (or name the agent).
"""

from __future__ import annotations

from contextvars import ContextVar

_current_request: ContextVar = ContextVar("berth_audit_request", default=None)


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def current_request():
    return _current_request.get()
