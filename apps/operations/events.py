"""Operation events pushed to browsers over WebSockets (queued, progress, finished).

Like container events (apps/containers/events.py) there is exactly one way to
emit them, ``send_operation_event``, with a typed payload; delivery is best
effort and never fails the report or request that caused it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from berth.events import iso, publish

EVENT_TYPE = "operation.state"
# The handler method on the consumer is derived from this ("operation.event" → operation_event).
LAYER_MESSAGE_TYPE = "operation.event"


@dataclass(frozen=True)
class OperationEvent:
    id: str
    kind: str
    status: str
    team: str
    host: str
    target: str
    progress: dict
    error: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None

    def as_message(self) -> dict:
        return {"type": EVENT_TYPE, "operation": asdict(self)}


def team_group(team_id: int) -> str:
    """Channel-layer group of one team's operation subscribers."""
    return f"team.{team_id}.operations"


def event_from_operation(operation) -> OperationEvent:
    return OperationEvent(
        id=operation.id,
        kind=operation.kind,
        status=operation.status,
        team=operation.team.slug,
        host=operation.host.name,
        target=operation.target,
        progress=dict(operation.progress or {}),
        error=operation.error,
        created_at=iso(operation.created_at),
        started_at=iso(operation.started_at),
        finished_at=iso(operation.finished_at),
    )


def send_operation_event(team_id: int, event: OperationEvent) -> bool:
    """Publish ``event`` to the team's group; returns False (and logs) if it could not."""
    return publish(team_group(team_id), LAYER_MESSAGE_TYPE, event)
