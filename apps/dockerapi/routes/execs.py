"""``docker exec``: create, start (hijacked connection), resize, inspect.

The stdio travels through ``apps.containers.relay``; the exit code the CLI
asks for right after the stream ends is on the Exec row, so the stream is
closed only once the row has it.
"""

from __future__ import annotations

import asyncio
import contextlib

from apps.containers import execs, relay
from apps.containers.choices import ExecState
from apps.containers.models import Exec
from apps.dockerapi import lookup
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import Reply
from apps.dockerapi.router import Context, call, route
from apps.dockerapi.routes.streams import RAW, STDERR, STDOUT, frame, stream_type

INPUT_CHUNK = 32 * 1024


def find_exec(user, exec_id: str) -> Exec:
    row = (
        Exec.objects.select_related("container", "container__team", "container__host")
        .filter(pk=exec_id, container__in=lookup.containers_of(user))
        .first()
    )
    if row is None:
        raise DockerError(404, f"No such exec instance: {exec_id}")
    return row


@route("POST", "/containers/(?P<name>[^/]+)/exec")
async def create_exec(ctx: Context) -> Reply:
    body = await ctx.json_body(required=True)
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object (exec config)")
    if body.get("Privileged"):
        raise DockerError(400, "Berth does not run privileged exec sessions")
    data = {
        "command": body.get("Cmd"),
        "env": body.get("Env") or [],
        "user": body.get("User") or "",
        "working_dir": body.get("WorkingDir") or "",
        "tty": bool(body.get("Tty")),
        "stdin": bool(body.get("AttachStdin")),
    }
    row = await call(_create, ctx.user, ctx.match["name"], data)
    return Reply(201, {"Id": row.id})


def _create(user, name: str, data: dict) -> Exec:
    container = lookup.find_container(user, name)
    return execs.create_exec(user, container, data)


@route("POST", "/exec/(?P<exec_id>[^/]+)/start")
async def start_exec(ctx: Context):
    body = await ctx.json_body()
    row = await call(find_exec, ctx.user, ctx.match["exec_id"])
    row = await call(execs.start_exec, ctx.user, row)
    if body.get("Detach"):
        return Reply(200)
    await ctx.hijack(RAW if row.tty else stream_type(ctx, False))
    pump = None
    if row.attach_stdin or row.tty:
        pump = asyncio.ensure_future(_pump_input(ctx, row))
    try:
        async for batch in relay.follow_async(row.id):
            out = b"".join(_encode(entry, row.tty) for entry in batch)
            if out:
                ctx.writer.write(out)
                await ctx.writer.drain()
            if batch and batch[-1].stream == "exit":
                # The CLI asks for the exit code the moment the stream ends.
                await call(execs.record_exit, row.id, batch[-1])
    finally:
        if pump is not None:
            pump.cancel()
    return None


def _encode(entry: relay.Output, tty: bool) -> bytes:
    if entry.stream == "exit" or not entry.data:
        return b""
    if tty:
        return entry.data
    return frame(STDERR if entry.stream == "stderr" else STDOUT, entry.data)


async def _pump_input(ctx: Context, row: Exec) -> None:
    """Client bytes to the process's stdin; EOF (the CLI's half-close) closes it."""
    with contextlib.suppress(ConnectionError, OSError):
        while data := await ctx.reader.read(INPUT_CHUNK):
            await call(execs.send_input, ctx.user, row, data)
    if row.attach_stdin:
        with contextlib.suppress(Exception):
            await call(execs.send_input, ctx.user, row, b"", close=True)


@route("POST", "/exec/(?P<exec_id>[^/]+)/resize")
async def resize_exec(ctx: Context) -> Reply:
    row = await call(find_exec, ctx.user, ctx.match["exec_id"])
    if row.tty:
        await call(execs.resize_exec, ctx.user, row, ctx.q_int("h"), ctx.q_int("w"))
    return Reply(200)


@route("GET", "/exec/(?P<exec_id>[^/]+)/json")
async def inspect_exec(ctx: Context) -> Reply:
    row = await call(find_exec, ctx.user, ctx.match["exec_id"])
    command = list(row.command or [])
    return Reply(
        200,
        {
            "ID": row.id,
            "Running": row.state in (ExecState.STARTING, ExecState.RUNNING),
            "ExitCode": row.exit_code
            if row.exit_code is not None
            else (126 if row.state == ExecState.FAILED else 0),
            "ProcessConfig": {
                "tty": row.tty,
                "entrypoint": command[0] if command else "",
                "arguments": command[1:],
                "privileged": False,
                "user": row.user,
            },
            "OpenStdin": row.attach_stdin,
            "OpenStderr": True,
            "OpenStdout": True,
            "CanRemove": False,
            "ContainerID": row.container_id,
            "DetachKeys": "",
            "Pid": row.pid or 0,
        },
    )
