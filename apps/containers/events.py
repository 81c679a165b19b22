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
from django.conf import settings

from berth.events import iso, publish
from berth.streams import CONTAINER_CHANGES

log = logging.getLogger(__name__)

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
    """Publish ``event`` to the team's group and to the change channel the Docker API's
    waiters hear; returns False (and logs) if either could not be sent."""
    changed = publish_change(event)
    return publish(team_group(team_id), LAYER_MESSAGE_TYPE, event) and changed


_changes_client: redis.Redis | None = None


def publish_change(event: ContainerEvent) -> bool:
    global _changes_client
    try:
        if _changes_client is None:
            _changes_client = redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        _changes_client.publish(CONTAINER_CHANGES, json.dumps(asdict(event)))
    except (redis.RedisError, OSError):
        log.warning("could not publish the change of container %s", event.id, exc_info=True)
        return False
    return True
