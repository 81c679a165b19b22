"""The Docker Engine API front end: an asyncio HTTP/1.1 server on a unix socket and TCP.

Django is set up in this process; handlers (``apps.dockerapi.routes``) call
Berth's services in worker threads. Run it with ``python -m apps.dockerapi``
(``berth.ctl`` starts it beside uvicorn).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from apps.dockerapi import auth, http
from apps.dockerapi.changes import changes
from apps.dockerapi.errors import DockerError, from_service_error
from apps.dockerapi.router import (
    API_VERSION,
    MIN_API_VERSION,
    Actor,
    Context,
    call,
    common_headers,
    current_actor,
    find_route,
    split_version,
    version_tuple,
)
from berth.errors import ServiceError

log = logging.getLogger(__name__)

WORKER_THREADS = 64  # blocking service calls (agent RPCs wait for seconds) run in threads
STREAM_LIMIT = 1024 * 1024


class DockerApiServer:
    def __init__(self, *, tcp: str | None, unix: str | None, web_url: str):
        self.tcp = tcp
        self.unix = unix
        self.web_url = web_url.rstrip("/")
        self.servers: list[asyncio.AbstractServer] = []

    async def start(self) -> None:
        from apps.dockerapi import routes  # noqa: F401 - registers the routes

        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(WORKER_THREADS, "dockerapi"))
        await changes.start()
        if self.unix:
            path = Path(self.unix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # a stale socket of a previous run
            old_mask = os.umask(0o177)  # created 0600: root only
            try:
                server = await asyncio.start_unix_server(
                    lambda r, w: self.connection(r, w, local=True),
                    path=str(path),
                    limit=STREAM_LIMIT,
                )
            finally:
                os.umask(old_mask)
            self.servers.append(server)
            log.info("Docker API on unix://%s", path)
        if self.tcp:
            host, _, port = self.tcp.rpartition(":")
            server = await asyncio.start_server(
                lambda r, w: self.connection(r, w, local=False),
                host.strip("[]") or None,
                int(port),
                limit=STREAM_LIMIT,
            )
            self.servers.append(server)
            log.info("Docker API on tcp://%s", self.tcp)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        for server in self.servers:
            await server.wait_closed()
        await changes.stop()
        if self.unix:
            Path(self.unix).unlink(missing_ok=True)

    async def connection(self, reader, writer, *, local: bool) -> None:
        try:
            while await self.one_request(reader, writer, local=local):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def one_request(self, reader, writer, *, local: bool) -> bool:
        """Serve one request; True when the connection may carry another."""
        try:
            request = await http.read_request(reader)
        except http.HttpError as exc:
            await self.send(writer, http.error_reply(exc.status, exc.message), keep=False)
            return False
        if request is None:
            return False
        request.api_version, path = split_version(request.path)
        ctx = Context(request, reader, writer, local=local, web_url=self.web_url)
        try:
            reply = await self.dispatch(ctx, path)
        except DockerError as exc:
            reply = http.error_reply(exc.status, exc.message)
        except ServiceError as exc:
            error = from_service_error(exc)
            reply = http.error_reply(error.status, error.message)
        except http.HttpError as exc:
            await self.send(writer, http.error_reply(exc.status, exc.message), keep=False)
            return False
        except asyncio.CancelledError:
            return False  # the client went away during a stream
        except (ConnectionError, OSError):
            return False
        except Exception as exc:  # noqa: BLE001 - answer 500 and keep serving
            log.exception("%s %s failed", request.method, request.path)
            reply = http.error_reply(500, f"internal error: {exc}")
        finally:
            ctx.stop_watching()
        if ctx.streamed:
            return False
        try:
            await request.body.drain()
        except http.HttpError:
            return False
        keep = request.keep_alive
        await self.send(writer, reply, keep=keep, head=request.method == "HEAD")
        return keep

    async def dispatch(self, ctx: Context, path: str):
        request = ctx.request
        if request.api_version is not None:
            check_version(request.api_version)
        found = find_route(request.method, path)
        if found is None:
            return http.error_reply(404, "page not found")
        chosen, request.match = found
        if chosen.auth:
            ctx.user, token = await call(self.authenticate, ctx)
            current_actor.set(Actor(ctx.user, token, {}, {"REMOTE_ADDR": ctx.peer}))
        ctx.handler_task = asyncio.ensure_future(chosen.handler(ctx))
        try:
            return await ctx.handler_task
        except ServiceError as exc:
            raise from_service_error(exc) from None
        except DockerError as exc:
            if ctx.streamed and not ctx.hijacked:
                log.info("%s %s: %s (after streaming began)", request.method, path, exc.message)
            raise

    @staticmethod
    def authenticate(ctx: Context):
        """(user, token); on the unix socket the token is None."""
        if ctx.local:
            return auth.local_admin(), None
        return auth.user_for_token(auth.token_key(ctx.request.headers), ctx.request.method)

    @staticmethod
    async def send(writer, reply: http.Reply, *, keep: bool, head: bool = False) -> None:
        payload = reply.payload()
        headers = [*common_headers(), *reply.headers]
        if payload or reply.status not in (204, 304):
            headers.append(("Content-Type", reply.content_type))
        if reply.status not in (204, 304):
            headers.append(("Content-Length", str(len(payload))))
        if not keep:
            headers.append(("Connection", "close"))
        writer.write(http.head_bytes(reply.status, headers))
        if payload and not head and reply.status not in (204, 304):
            writer.write(payload)
        await writer.drain()


def check_version(version: str) -> None:
    wanted = version_tuple(version)
    if wanted > version_tuple(API_VERSION):
        raise DockerError(
            400,
            f"client version {version} is too new. Maximum supported API version is {API_VERSION}",
        )
    if wanted < version_tuple(MIN_API_VERSION):
        raise DockerError(
            400,
            f"client version {version} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version",
        )


async def serve(tcp: str | None, unix: str | None, web_url: str) -> None:
    server = DockerApiServer(tcp=tcp, unix=unix, web_url=web_url)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
