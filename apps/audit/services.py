"""Writing and reading the audit log.

``record`` is called by services (inside their transaction, so a rolled-back
change leaves no event) with the action and the object; the actor and the
client address come from the HTTP request being handled, when there is one.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime

from apps.audit.context import current_request
from apps.audit.models import AuditEvent
from berth.errors import InvalidInput

MAX_DETAIL_CHARS = 10_000
EXPORT_FIELDS = (
    "id",
    "created_at",
    "actor_name",
    "via",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "team_slug",
    "ip",
    "details",
)
FILTERS = {
    "action": "action",
    "actor": "actor_name",
    "team": "team_slug",
    "object_type": "object_type",
    "object_id": "object_id",
    "ip": "ip",
}


def record(
    action: str,
    obj=None,
    *,
    team=None,
    user=None,
    via: str | None = None,
    details: dict | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> AuditEvent:
    """Append one event. ``user``/``via`` default to the current request's."""
    request = current_request()
    if user is None and request is not None:
        user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    if team is None and obj is not None:
        team = getattr(obj, "team", None) if not _is_team(obj) else obj
    return AuditEvent.objects.create(
        actor=user,
        actor_name=getattr(user, "username", "") or "",
        via=via or _via(request, user),
        action=action,
        object_type=object_type or (obj._meta.model_name if obj is not None else ""),
        object_id=str(object_id if object_id is not None else getattr(obj, "pk", "") or ""),
        object_repr=str(obj)[:200] if obj is not None else "",
        team=team,
        team_slug=getattr(team, "slug", "") or "",
        ip=client_ip(request),
        details=_bounded(details or {}),
    )


def _is_team(obj) -> bool:
    return obj._meta.label == "teams.Team"


def _via(request, user) -> str:
    if request is None:
        return "system"
    if user is None:
        return "anonymous"
    auth = getattr(request, "auth", None)
    if auth is None and hasattr(request, "_request"):
        auth = getattr(request._request, "auth", None)
    return "token" if auth is not None or request.headers.get("Authorization") else "session"


def client_ip(request) -> str | None:
    """The peer address; a proxy's X-Forwarded-For is not trusted (it can be forged)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _bounded(details: dict) -> dict:
    """Details as JSON, cut down when huge (an audit row is not a place for payloads)."""
    text = json.dumps(details, default=str, sort_keys=True)
    if len(text) <= MAX_DETAIL_CHARS:
        return json.loads(text)
    return {"truncated": text[:MAX_DETAIL_CHARS]}


# ---- reading ------------------------------------------------------------------------------


def visible_to(user) -> QuerySet[AuditEvent]:
    """Site admins see every event; team owners the events of their teams; others none."""
    from apps.teams.choices import Role
    from apps.teams.services import is_site_admin, teams_of

    if is_site_admin(user):
        return AuditEvent.objects.all()
    return AuditEvent.objects.filter(team__in=teams_of(user, [Role.OWNER]))


def filtered(events: QuerySet[AuditEvent], params) -> QuerySet[AuditEvent]:
    """Exact-match filters plus ``since``/``until`` (ISO 8601 times)."""
    for param, field in FILTERS.items():
        value = params.get(param)
        if value:
            events = events.filter(**{field: value})
    for param, lookup in (("since", "created_at__gte"), ("until", "created_at__lt")):
        value = params.get(param)
        if value:
            events = events.filter(**{lookup: _when(value, param)})
    return events


def _when(value: str, param: str) -> datetime:
    try:
        parsed = parse_datetime(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InvalidInput(
            f"'{param}' must be an ISO 8601 time with a zone, e.g. 2026-01-31T12:00:00Z",
            field=param,
        )
    return parsed


def export_row(event: AuditEvent) -> dict:
    return {
        "id": event.id,
        "created_at": event.created_at.isoformat(),
        "actor_name": event.actor_name,
        "via": event.via,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "team_slug": event.team_slug,
        "ip": event.ip,
        "details": event.details,
    }


def export_csv(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """CSV lines, header first; ``details`` as a JSON string. Streams: rows are not held."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(EXPORT_FIELDS)
    for event in events.iterator(chunk_size=1000):
        row = export_row(event)
        row["details"] = json.dumps(row["details"], sort_keys=True)
        yield line(_safe_cell(row[field]) for field in EXPORT_FIELDS)


def _safe_cell(value):
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def export_json(events: QuerySet[AuditEvent]) -> Iterator[str]:
    """One JSON array, streamed."""
    yield "["
    first = True
    for event in events.iterator(chunk_size=1000):
        yield ("" if first else ",\n") + json.dumps(export_row(event), sort_keys=True)
        first = False
    yield "]\n"
