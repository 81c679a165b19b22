"""The route table and the per-request context handlers get.

Every route exists unversioned and under ``/vX.Y`` (the prefix is stripped
before matching). Names of images may hold ``/`` and ``:``, so image routes
match greedily and by suffix.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from apps.audit.context import AuditContextMiddleware
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import JSON, ChunkedWriter, Request, head_bytes

API_VERSION = "1.51"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "28.5.2"
MAX_JSON_BODY = 16 * 1024 * 1024
FALSE_WORDS = frozenset({"", "0", "no", "false", "none"})
VERSION_PREFIX = re.compile(r"/v(\d+(?:\.\d+)?)(/.*)")

Handler = Callable[["Context"], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Handler
    auth: bool


ROUTES: list[Route] = []


def route(method: str, pattern: str, *, auth: bool = True):
    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, re.compile(pattern + r"\Z"), handler, auth))
        return handler

    return register


def split_version(path: str) -> tuple[str | None, str]:
    match = VERSION_PREFIX.fullmatch(path)
    return (match.group(1), match.group(2)) if match else (None, path)


def find_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    lookup = "GET" if method == "HEAD" else method
    for candidate in ROUTES:
        if candidate.method not in (method, lookup):
            continue
        match = candidate.pattern.match(path)
        if match:
            return candidate, match.groupdict()
    return None


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdecimal())


def common_headers() -> list[tuple[str, str]]:
    """Moby sends these on every answer; ``docker stats`` reads Ostype from its own."""
    return [
        ("Api-Version", API_VERSION),
        ("Ostype", "linux"),
        ("Server", f"Docker/{ENGINE_VERSION} (linux)"),
        ("Docker-Experimental", "false"),
    ]


@dataclass
class Actor:
    """What the audit log reads from "the current request": who acts, how, from where."""

    user: Any
    auth: Any  # the API token on TCP; None on the unix socket
    headers: dict
    META: dict  # noqa: N815 - Django's name, read by apps.audit


# The actor of the request being handled; worker threads inherit it (sync_to_async copies
# the context), so services record Docker API changes under the caller's name.
current_actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar(
    "dockerapi_actor", default=None
)


async def call(fn: Callable, *args, **kwargs) -> Any:
    """Run blocking Django code (ORM, services, agent RPCs) in a worker thread."""
    return await sync_to_async(partial(_fresh, fn), thread_sensitive=False)(*args, **kwargs)


def _fresh(fn: Callable, *args, **kwargs) -> Any:
    close_old_connections()
    actor = current_actor.get()
    if actor is None:
        return fn(*args, **kwargs)
    return AuditContextMiddleware(lambda _request: fn(*args, **kwargs))(actor)


class Context:
    """One request: its parameters, its user, and the ways to answer beyond a whole reply."""

    def __init__(self, request: Request, reader, writer, *, local: bool, web_url: str):
        self.request = request
        self.reader = reader
        self.writer = writer
        self.local = local  # came in on the unix socket: acts as a site admin
        self.web_url = web_url  # where agents reach the control plane (archive transfers)
        peer = writer.get_extra_info("peername") if writer is not None else None
        self.peer = peer[0] if isinstance(peer, tuple) and peer else None
        self.user = None
        self.streamed = False  # the head was sent: no error reply is possible any more
        self.hijacked = False
        self.handler_task: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None

    # ---- parameters --------------------------------------------------------------------

    @property
    def match(self) -> dict[str, str]:
        return self.request.match

    @property
    def api_version(self) -> str:
        return self.request.api_version or API_VERSION

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.request.query.get(name)
        return values[-1] if values else default

    def q_list(self, name: str) -> list[str]:
        return list(self.request.query.get(name, []))

    def q_bool(self, name: str, default: bool = False) -> bool:
        """Like moby's BoolValue: docker-py sends "True"/"False", the CLI "1"."""
        value = self.q(name)
        if value is None:
            return default
        return value.strip().lower() not in FALSE_WORDS

    def q_int(self, name: str, default: int | None = None) -> int | None:
        value = self.q(name)
        if value is None or value.strip() == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise DockerError(400, f"invalid value for {name}: {value!r} is not a number") from None

    def filters(self) -> dict[str, list[str]]:
        """``filters`` as name → values; the CLI sends {"k":{"v":true}}, docker-py {"k":["v"]}."""
        text = self.q("filters")
        if not text:
            return {}
        try:
            raw = json.loads(text)
        except ValueError:
            raise DockerError(400, f"invalid filter: {text[:100]!r} is not JSON") from None
        if not isinstance(raw, dict):
            raise DockerError(400, "invalid filter: must be a JSON object")
        result: dict[str, list[str]] = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                result[key] = [str(item) for item, on in value.items() if on]
            elif isinstance(value, list):
                result[key] = [str(item) for item in value]
            else:
                result[key] = [str(value)]
        return result

    async def json_body(self, *, required: bool = False) -> Any:
        raw = await self.request.body.read_all(MAX_JSON_BODY)
        if not raw.strip():
            if required:
                raise DockerError(400, "the request body must be a JSON object")
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise DockerError(400, f"invalid JSON body: {exc}") from None

    # ---- answering beyond a whole reply ----------------------------------------------

    async def stream(
        self, content_type: str = JSON, status: int = 200, headers: list | None = None
    ) -> ChunkedWriter:
        """Send the head now (chunked body) and close the connection afterwards.

        Once the body is sent, a client that hangs up cancels the handler: a
        ``docker run -d`` drops its pending wait, and nothing keeps polling.
        """
        await self.request.body.drain()
        head = [
            *common_headers(),
            ("Content-Type", content_type),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close"),
            *(headers or []),
        ]
        self.writer.write(head_bytes(status, head))
        await self.writer.drain()
        self.streamed = True
        self._watch_disconnect()
        return ChunkedWriter(self.writer, head=self.request.method == "HEAD")

    async def hijack(self, content_type: str) -> None:
        """``101 UPGRADED`` (or, without ``Upgrade: tcp``, a close-delimited 200) on its own."""
        if self.request.wants_upgrade:
            status = 101
            headers = [
                ("Content-Type", content_type),
                ("Connection", "Upgrade"),
                ("Upgrade", "tcp"),
            ]
        else:
            status = 200
            headers = [*common_headers(), ("Content-Type", content_type), ("Connection", "close")]
        self.writer.write(head_bytes(status, headers))
        await self.writer.drain()
        self.streamed = self.hijacked = True

    def _watch_disconnect(self) -> None:
        async def watch() -> None:
            while True:
                try:
                    data = await self.reader.read(4096)
                except (ConnectionError, OSError):
                    data = b""
                if not data:
                    break
            if self.handler_task is not None and not self.handler_task.done():
                self.handler_task.cancel()

        self._watcher = asyncio.ensure_future(watch())

    def stop_watching(self) -> None:
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
