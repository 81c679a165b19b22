"""Long-lived container answers: followed logs, log and stats events (SSE), and wait.

Each body is an async generator, so under ASGI (uvicorn, what ``make up``
runs) it streams without holding a thread, and Django cancels it when the
client disconnects (``CancelledError`` at its next ``await``). Database
reads run with ``sync_to_async`` in the request's own thread. Under WSGI
Django collects an async body whole before sending it, so there a follower
gets its answer when the stream ends; ``wait`` polls instead.

Server-Sent Events: every log record is ``id: <stream id>`` plus
``data: {"t", "s", "p", "l"}``; ``event: gap`` comes first when entries the
reader has not seen were trimmed; ``event: end`` (data ``{"state"}``) closes
a stream that ended because the container finished (or, without follow,
because everything was sent); ``event: error`` (data ``{"error": {"code",
"message"}}``) one that failed; ``: keepalive`` comments keep idle
connections open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from rest_framework import renderers

from apps.containers import logs, services
from apps.containers.choices import STATS_STATES, State
from apps.containers.events import EVENT_TYPE, team_group
from berth.errors import Conflict, ServiceError

log = logging.getLogger(__name__)

EVENT_STREAM = "text/event-stream"
TEXT = "text/plain; charset=utf-8"
KEEPALIVE = b": keepalive\n\n"
KEEPALIVE_TICKS = 15  # idle follower ticks (about a second each) between keep-alives
CHUNK = 1000  # records per body message
STATS_INTERVAL = 1.0
WAIT_POLL = 0.1  # seconds between database checks when no channel layer wakes the waiter
WAIT_EVENT_POLL = 1.0  # with one: events wake it, the database stays the truth
WAIT_KEEPALIVE = 15.0  # a space before the JSON keeps proxies from closing a long poll


class EventStreamRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/event-stream`` (EventSource) reach the SSE views; errors stay JSON."""

    media_type = EVENT_STREAM
    format = "sse"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes | str) else json.dumps(data)


def is_asgi(request) -> bool:
    return isinstance(getattr(request, "_request", request), ASGIRequest)


def sse(data, *, event: str | None = None, entry_id: str | None = None) -> bytes:
    """One Server-Sent Event; ``data`` is JSON on one line (json.dumps escapes newlines)."""
    lines = []
    if event:
        lines.append(f"event: {event}")
    if entry_id:
        lines.append(f"id: {entry_id}")
    lines.append("data: " + json.dumps(data, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def event_stream_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=EVENT_STREAM)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass events on at once
    return response


def text_response(body: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=TEXT)
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def _may_grow(container_id: str):
    check = sync_to_async(services.logs_may_grow)

    async def may_grow() -> bool:
        return await check(container_id)

    return may_grow


async def _final_state(container_id: str) -> str:
    row = await sync_to_async(services.current_state)(container_id)
    return row["state"] if row else State.REMOVED


def _chunks(records: list[logs.Record]) -> Iterable[list[logs.Record]]:
    for start in range(0, len(records), CHUNK):
        yield records[start : start + CHUNK]


# ---- logs ---------------------------------------------------------------------------------


async def follow_log_text(
    container_id: str, read: services.LogsRead, query: logs.LogQuery
) -> AsyncIterator[bytes]:
    """What was read, then new records as plain text until the container finished."""
    if read.text:
        yield read.text.encode()
    try:
        async for batch in logs.follow(container_id, read.last_id, query, _may_grow(container_id)):
            if batch:
                yield "".join(record.text(query.timestamps) for record in batch).encode()
    except logs.LogStoreUnavailable as exc:
        log.warning("following the logs of %s stopped: %s", container_id, exc)


async def log_events(
    container_id: str, page: logs.Page, query: logs.LogQuery
) -> AsyncIterator[bytes]:
    """The records of ``page`` as events, then (``query.follow``) new ones as they come."""
    if page.gap is not None:
        yield sse(page.gap.as_json(), event="gap")
    for chunk in _chunks(page.records):
        yield _record_events(chunk)
    if query.follow:
        idle = 0
        try:
            async for batch in logs.follow(
                container_id, page.last_id, query, _may_grow(container_id)
            ):
                if batch:
                    idle = 0
                    yield _record_events(batch)
                else:
                    idle += 1
                    if idle % KEEPALIVE_TICKS == 0:
                        yield KEEPALIVE
        except logs.LogStoreUnavailable as exc:
            yield _error_event("host_unavailable", f"the log stream is unreachable: {exc}")
            return
    yield sse({"state": await _final_state(container_id)}, event="end")


def _record_events(records: list[logs.Record]) -> bytes:
    return b"".join(sse(record.as_json(), entry_id=record.id) for record in records)


def _error_event(code: str, message: str) -> bytes:
    return sse({"error": {"code": code, "message": message}}, event="error")


# ---- stats --------------------------------------------------------------------------------


def cpu_percent(previous: dict, current: dict) -> float | None:
    """CPU use between two samples, in percent of one CPU (200.0 = two CPUs busy)."""
    start, end = logs.rfc3339_ns(previous.get("read_at")), logs.rfc3339_ns(current.get("read_at"))
    used = current.get("cpu_usage_ns", 0) - previous.get("cpu_usage_ns", 0)
    if start is None or end is None or end <= start or used < 0:
        return None
    return round(used / (end - start) * 100, 2)


async def stats_events(container, first: dict) -> AsyncIterator[bytes]:
    """A sample a second (the first has ``cpu_percent`` null) until the container stops."""
    yield sse({**first, "cpu_percent": None})
    previous = first
    loop = asyncio.get_running_loop()
    next_at = loop.time() + STATS_INTERVAL
    state_of = sync_to_async(services.current_state)
    sample_of = sync_to_async(services.container_stats)
    while True:
        await asyncio.sleep(max(0.0, next_at - loop.time()))
        next_at = max(next_at + STATS_INTERVAL, loop.time())
        row = await state_of(container.id)
        if row is None or row["state"] not in STATS_STATES:
            yield sse({"state": row["state"] if row else State.REMOVED}, event="end")
            return
        container.state = row["state"]
        try:
            sample = await sample_of(container)
        except Conflict:  # it stopped between the check and the sample
            yield sse({"state": await _final_state(container.id)}, event="end")
            return
        except ServiceError as exc:
            yield _error_event(exc.code, exc.message)
            return
        yield sse({**sample, "cpu_percent": cpu_percent(previous, sample)})
        previous = sample


# ---- wait ---------------------------------------------------------------------------------


def wait_finished(row: dict | None) -> bool:
    return row is None or row["state"] == State.EXITED


def wait_result(row: dict | None, last: dict, *, timed_out: bool = False) -> dict:
    """The answer of ``wait``: the row, or (removed) the last thing known about it."""
    if row is None:
        return {
            "state": State.REMOVED,
            "exit_code": last.get("exit_code"),
            "oom_killed": bool(last.get("oom_killed")),
            "timed_out": False,
        }
    return {
        "state": row["state"],
        "exit_code": row["exit_code"],
        "oom_killed": row["oom_killed"],
        "timed_out": timed_out,
    }


def wait_blocking(container_id: str, timeout: float, last: dict) -> dict:
    """WSGI: poll the row every WAIT_POLL seconds until it exited, went, or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        row = services.current_state(container_id)
        if wait_finished(row):
            return wait_result(row, last)
        last = row
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return wait_result(row, last, timed_out=True)
        time.sleep(min(WAIT_POLL, remaining))


async def wait_body(
    container_id: str, team_id: int, timeout: float, last: dict
) -> AsyncIterator[bytes]:
    """ASGI: the headers go at once, the JSON when the container exited (or time ran out).

    The team's container events wake the waiter; the row is read after each
    wake-up and at least every WAIT_EVENT_POLL seconds, since events are best
    effort. A space every WAIT_KEEPALIVE seconds keeps the connection alive.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    next_keepalive = loop.time() + WAIT_KEEPALIVE
    state_of = sync_to_async(services.current_state)
    wakeups = _Wakeups(team_id, container_id)
    await wakeups.start()
    try:
        while True:
            row = await state_of(container_id)
            if wait_finished(row):
                result = wait_result(row, _latest(wakeups.last_event, last))
                break
            last = row
            now = loop.time()
            if now >= deadline:
                result = wait_result(row, last, timed_out=True)
                break
            if now >= next_keepalive:
                next_keepalive = now + WAIT_KEEPALIVE
                yield b" "
            await wakeups.wait(min(deadline, next_keepalive) - now)
    finally:
        await wakeups.stop()
    yield json.dumps(result).encode()


def _latest(event: dict | None, last: dict) -> dict:
    """What is known about a removed container: its final event, else the last row read."""
    if event and event.get("state") in (State.EXITED, State.REMOVED):
        return event
    return last


class _Wakeups:
    """Container events of one team from the channel layer, as wake-ups for a waiter.

    One ``receive`` stays pending across waits and is ended by a message to
    ourselves, never cancelled: cancelling a channels_redis receive midway
    can drop a message meant for another consumer of this process. Without
    a usable layer the waiter sleeps WAIT_POLL seconds instead.
    """

    def __init__(self, team_id: int, container_id: str):
        self.team_id = team_id
        self.container_id = container_id
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.pending: asyncio.Future | None = None
        self.last_event: dict | None = None

    async def start(self) -> None:
        if self.layer is None:
            return
        try:
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(team_group(self.team_id), self.channel)
        except Exception:  # noqa: BLE001 - no layer: poll the database instead
            log.warning("waiting without container events", exc_info=True)
            self.channel = None

    async def wait(self, seconds: float) -> None:
        if self.channel is None:
            await asyncio.sleep(max(0.0, min(seconds, WAIT_POLL)))
            return
        if self.pending is None:
            self.pending = asyncio.ensure_future(self.layer.receive(self.channel))
        timeout = max(0.0, min(seconds, WAIT_EVENT_POLL))
        done, _ = await asyncio.wait({self.pending}, timeout=timeout)
        if not done:
            return
        finished, self.pending = self.pending, None
        try:
            message = finished.result()
        except Exception:  # noqa: BLE001 - the layer failed: poll from now on
            log.warning("container events stopped; polling", exc_info=True)
            self.channel = None
            return
        event = message.get("event") if isinstance(message, dict) else None
        if not isinstance(event, dict) or event.get("type") != EVENT_TYPE:
            return
        container = event.get("container")
        if isinstance(container, dict) and container.get("id") == self.container_id:
            self.last_event = container

    async def stop(self) -> None:
        if self.channel is None:
            return
        try:
            await self.layer.group_discard(team_group(self.team_id), self.channel)
            if self.pending is not None:
                await self.layer.send(self.channel, {"type": "wait.stop"})
                done, _ = await asyncio.wait({self.pending}, timeout=2)
                if not done:
                    self.pending.cancel()
        except Exception:  # noqa: BLE001 - cleanup is best effort
            log.debug("could not leave the events group", exc_info=True)
