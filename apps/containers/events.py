"""Container state events pushed to browsers over WebSockets.

There is exactly one way to emit them, ``send_container_event``, with a typed
payload, so the consumer, the tests and any future client agree on the shape.
Delivery is best effort: the database is the truth, and a lost event must
never fail the report or request that caused it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import redis

from berth import redis_clients
from berth.errors import ServiceUnavailable
from berth.events import iso, publish
from berth.streams import CONTAINER_CHANGES, team_events

log = logging.getLogger(__name__)
HISTORY_LENGTH = 10_000  # events kept per team for `docker events --since`

EVENT_TYPE = "container.state"
# The handler method on the consumer is derived from this ("container.event" → container_event).
LAYER_MESSAGE_TYPE = "container.event"


@dataclass(frozen=True)
class ContainerEvent:
    id: str
    name: str
    team: str
    host: str
    state: str
    seq: int
    exit_code: int | None
    error: str
    started_at: str | None
    finished_at: str | None
    oom_killed: bool = False
    restart_count: int = 0
    health: str = ""  # "", starting, healthy or unhealthy

    def as_message(self) -> dict:
        return {"type": EVENT_TYPE, "container": asdict(self)}


def team_group(team_id: int) -> str:
    """Channel-layer group of one team's subscribers (names must be ASCII, < 100 chars)."""
    return f"team.{team_id}.containers"


def event_from_container(container, state: str | None = None) -> ContainerEvent:
    return ContainerEvent(
        id=container.id,
        name=container.name,
        team=container.team.slug,
        host=container.host.name,
        state=state or container.state,
        seq=container.state_seq,
        exit_code=container.exit_code,
        error=container.error,
        started_at=iso(container.started_at),
        finished_at=iso(container.finished_at),
        oom_killed=container.oom_killed,
        restart_count=container.restart_count,
        health=container.health_status,
    )


def send_container_event(team_id: int, event: ContainerEvent) -> bool:
    """Publish ``event`` to the team's group, to the change channel the Docker API's
    waiters hear, and to the team's event history; False (and a log line) if any of
    that failed."""
    shared = publish_change(team_id, event)
    return publish(team_group(team_id), LAYER_MESSAGE_TYPE, event) and shared


def publish_change(team_id: int, event: ContainerEvent) -> bool:
    """The change on the pub/sub channel, and appended to the team's history (a capped
    stream whose ids are times, which ``docker events --since`` replays); one round trip."""
    payload = json.dumps(asdict(event))
    try:
        pipe = redis_clients.client().pipeline(transaction=False)
        pipe.publish(CONTAINER_CHANGES, payload)
        pipe.xadd(team_events(team_id), {"e": payload}, maxlen=HISTORY_LENGTH, approximate=True)
        pipe.execute()
    except (redis.RedisError, OSError):
        log.warning("could not publish the change of container %s", event.id, exc_info=True)
        return False
    return True


def history(team_ids: list[int], since_ns: int, until_ns: int | None) -> list[tuple[int, dict]]:
    """The teams' recorded events from ``since_ns`` (to ``until_ns``), oldest first, each
    with its time in ns; ServiceUnavailable without Redis."""
    low, high = f"{since_ns // 10**6}-0", "+" if until_ns is None else f"{until_ns // 10**6}"
    try:
        entries = [entry for team_id in team_ids for entry in redis_clients.client().xrange(
            team_events(team_id), min=low, max=high)]
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable(f"cannot read the event history: {exc}") from exc
    found = []
    for entry_id, fields in entries:
        ms, _, seq = entry_id.decode().partition("-")
        try:
            found.append(((int(ms), int(seq)), json.loads(fields[b"e"])))
        except (KeyError, ValueError):
            continue
    found.sort(key=lambda item: item[0])
    return [(ms * 10**6, event) for (ms, _), event in found]
