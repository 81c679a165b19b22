"""Runs a service call for a page and shows its outcome: errors are shown, never swallowed."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages

from berth.errors import ServiceError


def attempt(request, action: Callable[[], object], success: str | None = None) -> bool:
    """Call ``action``; a ServiceError becomes an error message (with its field) and False."""
    try:
        action()
    except ServiceError as exc:
        field = f" ({exc.field})" if exc.field else ""
        messages.error(request, f"{exc.message}{field}")
        return False
    if success:
        messages.success(request, success)
    return True
