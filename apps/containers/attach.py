"""Attaching to a container's own stdio (``docker attach``, the dashboard's console).

Output is the container's log stream: an attacher follows it from the id
``attach`` returns, so attaching before ``start`` misses nothing. Input goes
to the container's stdin or terminal through a Redis stream the agent feeds
from while the container runs (``workers/agent/attach.py``).
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from apps.containers import logs
from apps.containers.choices import ON_HOST_STATES, State
from apps.containers.execs import require_operator
from apps.containers.models import Container
from apps.containers.options import parse_int
from apps.hosts.services import send_to_host
from berth import redis_clients, streams
from berth.errors import Conflict, ServiceUnavailable, TooLarge

log = logging.getLogger(__name__)
INPUT_MAXLEN = 10_000
MAX_INPUT = 1 << 20
MAX_TERMINAL = 1000
ATTACHABLE_STATES = ON_HOST_STATES | {State.PENDING}


def takes_input(container: Container) -> bool:
    options = container.options or {}
    return bool(options.get("tty") or options.get("open_stdin"))


def attach(user, container: Container) -> str:
    """Start feeding input (when the container takes any); the log id output follows from."""
    require_operator(user, container)
    if container.state not in ATTACHABLE_STATES:
        raise Conflict(f"container {container.short_id} is {container.state}; cannot attach")
    if takes_input(container):
        # Input left from an earlier attach must not reach this run.
        _forget_input(container.id)
        send_to_host(container.host, "agent.container_attach", [container.id])
    return last_log_id(container.id)


def send_input(user, container: Container, data: bytes, *, close: bool = False) -> None:
    require_operator(user, container)
    if not takes_input(container):
        raise Conflict(f"container {container.short_id} has no open stdin and no terminal")
    if container.state not in ATTACHABLE_STATES:
        raise Conflict(f"container {container.short_id} is {container.state}")
    if len(data) > MAX_INPUT:
        raise TooLarge(f"send input in pieces of at most {MAX_INPUT} bytes")
    if data:
        _send(container.id, {"d": data})
    if close:
        _send(container.id, {"eof": 1})  # the container then reads end of file


def resize(user, container: Container, rows: Any, columns: Any) -> None:
    require_operator(user, container)
    rows = parse_int(rows, "rows", 1, MAX_TERMINAL)
    columns = parse_int(columns, "columns", 1, MAX_TERMINAL)
    if not (container.options or {}).get("tty"):
        raise Conflict(f"container {container.short_id} has no terminal to resize")
    _send(container.id, {"resize": f"{rows} {columns}"})


def last_log_id(container_id: str) -> str:
    try:
        newest = _client().xrevrange(logs.stream_key(container_id), count=1)
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach Redis for the container's output: {exc}") from exc
    return newest[0][0].decode() if newest else "0-0"


def forget(container_id: str) -> None:
    """The container was removed: its input stream goes too (errors are only logged)."""
    try:
        _forget_input(container_id)
    except ServiceUnavailable as exc:
        log.warning("could not delete the input stream of %s: %s", container_id, exc)


def _forget_input(container_id: str) -> None:
    try:
        _client().delete(streams.attach_input(container_id))
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach Redis for the container's input: {exc}") from exc


def _send(container_id: str, fields: dict) -> None:
    try:
        _client().xadd(streams.attach_input(container_id), fields, maxlen=INPUT_MAXLEN,
                       approximate=True)
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable(f"cannot reach Redis for the container's input: {exc}") from exc


def _client() -> redis.Redis:
    return redis_clients.client()
