"""An exec's stdio as the control plane sees it: two Redis streams the agent serves.

Writers append to the input stream (the agent reads it from the start, so
input sent before the process started is delivered); readers follow the
output stream by entry id and can resume after any id they have seen. The
REST API, the dashboard's terminal and the Docker API all go through here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis
import redis.asyncio as aioredis
from django.conf import settings

from berth import redis_clients, streams
from berth.errors import ServiceUnavailable

INPUT_MAXLEN = 10_000
READ_BATCH = 500
BLOCK_MS = 1000
REDIS_ERRORS = (redis.RedisError, OSError)
SIGHUP = 1


@dataclass(frozen=True)
class Output:
    id: str
    stream: str  # stdout | stderr | exit
    data: bytes
    exit_code: int | None = None
    error: str = ""

    @classmethod
    def from_entry(cls, entry_id, fields: dict) -> Output:
        entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        if b"exit" in fields:
            return cls(entry_id, "exit", b"", int(fields[b"exit"]),
                       fields.get(b"error", b"").decode(errors="replace"))
        return cls(entry_id, fields.get(b"s", b"stdout").decode(), fields.get(b"d", b""))


def _client() -> redis.Redis:
    return redis_clients.client(timeout=BLOCK_MS / 1000 + 5)


def _send(exec_id: str, fields: dict) -> None:
    try:
        _client().xadd(streams.exec_input(exec_id), fields, maxlen=INPUT_MAXLEN,
                       approximate=True)
    except REDIS_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach Redis for the exec's input: {exc}") from exc


def write(exec_id: str, data: bytes) -> None:
    if data:
        _send(exec_id, {"d": data})


def close_input(exec_id: str) -> None:
    _send(exec_id, {"eof": 1})


def resize(exec_id: str, rows: int, columns: int) -> None:
    _send(exec_id, {"resize": f"{rows} {columns}"})


def signal(exec_id: str, signum: int) -> None:
    _send(exec_id, {"kill": signum})


def read(exec_id: str, after: str = "0", block_ms: int | None = None) -> list[Output]:
    """Output entries after ``after``; waits up to ``block_ms`` for the first when given."""
    try:
        answer = _client().xread({streams.exec_output(exec_id): after}, count=READ_BATCH,
                                 block=block_ms)
    except REDIS_ERRORS as exc:
        raise ServiceUnavailable(f"cannot reach Redis for the exec's output: {exc}") from exc
    return [Output.from_entry(entry_id, fields) for _, entries in answer
            for entry_id, fields in entries]


def follow(exec_id: str, after: str = "0"):
    """Output entries as they come, ending after the exit entry."""
    while True:
        for entry in read(exec_id, after, BLOCK_MS):
            yield entry
            after = entry.id
            if entry.stream == "exit":
                return


async def follow_async(exec_id: str, after: str = "0") -> AsyncIterator[list[Output]]:
    """Batches of output as they come (``[]`` after each idle second), ending after exit."""
    client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5,
                                     socket_timeout=BLOCK_MS / 1000 + 5)
    key = streams.exec_output(exec_id)
    try:
        while True:
            try:
                answer = await client.xread({key: after}, count=READ_BATCH, block=BLOCK_MS)
            except REDIS_ERRORS as exc:
                raise ServiceUnavailable(f"cannot reach Redis for the exec's output: {exc}") \
                    from exc
            batch = [Output.from_entry(entry_id, fields) for _, entries in answer
                     for entry_id, fields in entries]
            yield batch
            if batch:
                after = batch[-1].id
                if batch[-1].stream == "exit":
                    return
    finally:
        await client.aclose()


class AsyncInput:
    """The input side for an async client (the terminal's WebSocket)."""

    def __init__(self, exec_id: str):
        self.key = streams.exec_input(exec_id)
        self.client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)

    async def write(self, data: bytes) -> None:
        if data:
            await self.client.xadd(self.key, {"d": data}, maxlen=INPUT_MAXLEN, approximate=True)

    async def resize(self, rows: int, columns: int) -> None:
        await self.client.xadd(self.key, {"resize": f"{rows} {columns}"}, maxlen=INPUT_MAXLEN,
                               approximate=True)

    async def hang_up(self) -> None:
        await self.client.xadd(self.key, {"kill": SIGHUP}, maxlen=INPUT_MAXLEN,
                               approximate=True)

    async def close(self) -> None:
        await self.client.aclose()
