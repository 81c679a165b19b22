"""ISO 8601 parsing for timestamps that arrive from agents.

Agents write nanosecond precision with a ``Z`` suffix; Django keeps
microseconds and needs aware datetimes, so naive values are read as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime


def parse_iso(value: str | None) -> datetime | None:
    """``None``/``""`` → None; anything else must parse, or ValueError names the value."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ValueError(f"timestamp must be an ISO 8601 string, got {value!r}")
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(f"timestamp {value!r} is not ISO 8601")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
