"""Live container logs for the browser over a WebSocket: from the first byte, no polling.

``/ws/containers/<id>/logs/?tail=N`` sends the last N records, then every new
one as the agent ships it; ``?after=<entry id>`` (a reconnect) sends exactly
the records after that id instead, so a client that remembers the last id it
saw resumes without gaps or duplicates (the Redis stream ids of
apps/containers/logs.py only grow). Messages to the client:

- ``{"type": "records", "records": [[id, time, stream, line, partial], ...]}``
- ``{"type": "gap", "after", "first"}``: records after ``after`` were trimmed
- ``{"type": "text", "text"}``: logs from the host's files (no stream, no ids)
- ``{"type": "end", "state"}``: the container finished; nothing more will come
- ``{"type": "error", "error": {"code", "message"}}``

The server closes the socket after ``end`` and after an error; after an error the
client reconnects with the last id it has.

Access is checked on connect with the same team restriction as the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.containers import logs, services
from apps.containers.choices import LOGGING_STATES, State
from apps.dashboard.access import containers_of
from berth.errors import ServiceError

log = logging.getLogger(__name__)

DEFAULT_TAIL = 1000
MAX_TAIL = 100_000
CHUNK = 2000  # records per message: big enough for 10,000 lines/s, small enough to parse


@database_sync_to_async
def _container_for(user, container_id: str):
    return containers_of(user).filter(pk=container_id).first()


class ContainerLogsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.pump: asyncio.Task | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        container_id = self.scope["url_route"]["kwargs"]["container_id"]
        self.container = await _container_for(user, container_id)
        if self.container is None:
            await self.close(code=4404)
            return
        await self.accept()
        try:
            tail, after = _parse_query(self.scope.get("query_string", b""))
        except (ValueError, ServiceError) as exc:
            await self._error("bad_request", str(exc))
            await self.close()
            return
        self.pump = asyncio.ensure_future(self._pump(tail, after))

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pump

    async def receive_json(self, content, **kwargs):
        """Nothing to receive: pausing and filtering happen in the browser."""

    async def _pump(self, tail: int, after: str | None) -> None:
        """Stream, then close: after the end (the client stops) or a failure (the client
        reconnects after the last id it has, so nothing is lost)."""
        try:
            await self._stream(tail, after)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the client must learn, and can resume
            log.warning("log stream of %s failed", self.container.id, exc_info=True)
            await self._error("stream_failed", f"the log stream failed: {exc}")
        await self.close()

    async def _stream(self, tail: int, after: str | None) -> None:
        container_id = self.container.id
        query = logs.make_query(tail=None if after else tail, timestamps=True)
        try:
            page = await asyncio.to_thread(logs.read, container_id, query, after)
        except logs.LogStoreUnavailable as exc:
            await self._from_host_files(tail, str(exc))
            return
        if page.gap is not None:
            await self.send_json({"type": "gap", **page.gap.as_json()})
        if page.empty and after is None and self.container.state not in LOGGING_STATES:
            await self._from_host_files(tail, None)
            return
        for start in range(0, len(page.records), CHUNK):
            await self._send_records(page.records[start : start + CHUNK])
        may_grow = database_sync_to_async(services.logs_may_grow)
        try:
            async for batch in logs.follow(container_id, page.last_id, query,
                                           lambda: may_grow(container_id)):
                for start in range(0, len(batch), CHUNK):
                    await self._send_records(batch[start : start + CHUNK])
        except logs.LogStoreUnavailable as exc:
            await self._error("host_unavailable", f"the log stream is unreachable: {exc}")
            return
        row = await database_sync_to_async(services.current_state)(container_id)
        await self.send_json({"type": "end", "state": row["state"] if row else State.REMOVED})

    async def _from_host_files(self, tail: int, problem: str | None) -> None:
        """Logs the stream does not have (never shipped, or Redis is down): the agent's files."""
        if problem:
            log.warning("log stream of %s unreadable: %s", self.container.id, problem)
        try:
            text = await database_sync_to_async(services.read_logs)(self.container, tail, True)
        except ServiceError as exc:
            await self._error(exc.code, exc.message)
            return
        await self.send_json({"type": "text", "text": text})
        await self.send_json({"type": "end", "state": self.container.state})

    async def _send_records(self, records: list[logs.Record]) -> None:
        await self.send_json(
            {"type": "records", "records": [[r.id, r.t, r.s, r.l, r.p] for r in records]}
        )

    async def _error(self, code: str, message: str) -> None:
        await self.send_json({"type": "error", "error": {"code": code, "message": message}})


def _parse_query(raw: bytes) -> tuple[int, str | None]:
    params = parse_qs(raw.decode("latin-1"))
    tail_text = params.get("tail", [str(DEFAULT_TAIL)])[0]
    if not tail_text.isdecimal():
        raise ValueError(f"'tail' must be a whole number, got {tail_text!r}")
    after = params.get("after", [None])[0]
    if after is not None:
        after = logs.parse_entry_id(after)
    return min(int(tail_text), MAX_TAIL), after
