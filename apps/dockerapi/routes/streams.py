"""Container endpoints that stream: wait, logs, attach, stats, and ``/events``.

Each sends its head at once (the CLI blocks until it has it) and its body as
things happen. Output comes from the container's log stream in Redis
(``apps.containers.logs``), framed as dockerd frames it when there is no TTY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
import time

from channels.layers import get_channel_layer
from django.utils import timezone

from apps.containers import attach, logs, services
from apps.containers.choices import LIVE_STATES, State
from apps.containers.events import EVENT_TYPE, history, team_group
from apps.dockerapi import detach, lookup, shapes
from apps.dockerapi.changes import changes
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import Reply
from apps.dockerapi.router import Context, call, route, version_tuple
from apps.dockerapi.routes.containers import state_row
from apps.teams.models import Team
from apps.teams.services import is_site_admin, teams_of
from berth.errors import Conflict, ServiceError

MUX = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"
FRAME = 32 * 1024
STDOUT, STDERR, SYSTEM_ERROR = 1, 2, 3
WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
ENDED = (State.EXITED, State.REMOVING)
STATS_INTERVAL = 1.0
ATTACH_POLL = 0.05  # seconds between reads of an attached container's new output
REREAD_WAIT = 1.0  # seconds a waiter sleeps at most between reads of the row


def frame(stream: int, data: bytes) -> bytes:
    return b"".join(
        struct.pack(">BxxxL", stream, len(data[start : start + FRAME]))
        + data[start : start + FRAME]
        for start in range(0, len(data), FRAME)
    )


def encode_records(records: list[logs.Record], timestamps: bool, tty: bool) -> bytes:
    """Records as the bytes a client reads: raw with a TTY, else one frame per stream run."""
    if tty:
        return "".join(record.text(timestamps) for record in records).encode()
    out, run, run_stream = [], [], None
    for record in records:
        stream = STDERR if record.s == "stderr" else STDOUT
        if stream != run_stream and run:
            out.append(frame(run_stream, "".join(run).encode()))
            run = []
        run_stream = stream
        run.append(record.text(timestamps))
    if run:
        out.append(frame(run_stream, "".join(run).encode()))
    return b"".join(out)


def stream_type(ctx: Context, tty: bool) -> str:
    return RAW if tty or version_tuple(ctx.api_version) < (1, 42) else MUX


# ---- wait -------------------------------------------------------------------------------


@route("POST", "/containers/(?P<name>[^/]+)/wait")
async def wait_container(ctx: Context):
    condition = ctx.q("condition") or "not-running"
    if condition not in WAIT_CONDITIONS:
        raise DockerError(400, f"invalid condition: {condition!r}")
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    with changes.watch(container.id) as watch:
        initial = await call(state_row, container.id)
        writer = await ctx.stream()  # headers now: `docker run` starts the container after
        last = row = initial
        while not _wait_done(condition, initial, row):
            last = row
            await watch.wait(REREAD_WAIT)
            row = await call(state_row, container.id)
    code = _exit_code(row, watch.last, last)
    await writer.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
    await writer.close()


def _wait_done(condition: str, initial: dict | None, row: dict | None) -> bool:
    if row is None:
        return True
    if condition == "removed":
        return False
    if condition == "not-running":
        return row["state"] not in LIVE_STATES
    return row["state"] in ENDED and (initial is None or row["state_seq"] > initial["state_seq"])


def _exit_code(row: dict | None, event: dict | None, last: dict | None) -> int:
    for source in (row, event, last):
        if source and source.get("exit_code") is not None:
            return int(source["exit_code"])
    return 0


# ---- logs -------------------------------------------------------------------------------


@route("GET", "/containers/(?P<name>[^/]+)/logs")
async def container_logs(ctx: Context):
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    stdout, stderr = ctx.q_bool("stdout"), ctx.q_bool("stderr")
    if not (stdout or stderr):
        raise DockerError(400, "Bad parameters: you must choose at least one stream")
    tail = ctx.q("tail") or "all"
    query = logs.make_query(
        tail=None if tail == "all" or tail.startswith("-") else _int(tail, "tail"),
        since=_time(ctx.q("since")),
        until=_time(ctx.q("until")),
        timestamps=ctx.q_bool("timestamps"),
        stdout=stdout,
        stderr=stderr,
        follow=ctx.q_bool("follow"),
    )
    tty = bool((container.options or {}).get("tty"))
    pages = services.log_pages(container, query)
    page = await call(next, pages)
    if page.empty and not query.filtered and not (query.follow and container.state in LIVE_STATES):
        text = await call(services.read_container_logs, container, query)
        writer = await ctx.stream(stream_type(ctx, tty))
        await writer.write(text.text.encode() if tty else frame(STDOUT, text.text.encode()))
        await writer.close()
        return
    writer = await ctx.stream(stream_type(ctx, tty))
    last_id = await _write_pages(writer, page, pages, query.timestamps, tty)
    if query.follow and last_id is not None:
        may_grow = _checker(services.logs_may_grow, container.id)
        with contextlib.suppress(logs.LogStoreUnavailable):
            async for batch in logs.follow(container.id, last_id, query, may_grow):
                if batch:
                    await writer.write(encode_records(batch, query.timestamps, tty))
    await writer.close()


async def _write_pages(writer, page, pages, timestamps: bool, tty: bool) -> str | None:
    """Each page out while the next is read; the last entry id, or None when the stream
    became unreadable midway (the head is out: the body just ends)."""
    while page is not None:
        following = asyncio.ensure_future(call(next, pages, None))
        await writer.write(encode_records(page.records, timestamps, tty))
        last_id = page.last_id
        try:
            page = await following
        except ServiceError:
            return None
    return last_id


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise DockerError(400, f"invalid value for {name}: {value!r}") from None


def _time(value: str | None) -> str | None:
    return None if value in (None, "", "0") else value


def _checker(fn, *args):
    async def check() -> bool:
        return await call(fn, *args)

    return check


# ---- attach -----------------------------------------------------------------------------


@route("POST", "/containers/(?P<name>[^/]+)/attach")
async def attach_container(ctx: Context):
    """Output from the log stream until the container's next exit; stdin through
    ``apps.containers.attach`` when the container has an open stdin or a terminal."""
    keys = detach.parse(ctx.q("detachKeys"))
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    tty = bool((container.options or {}).get("tty"))
    initial = await call(state_row, container.id)
    after = await call(attach.attach, ctx.user, container)
    if ctx.q_bool("logs"):
        after = "0-0"
    query = logs.make_query(
        stdout=ctx.q_bool("stdout") or not ctx.q_bool("stderr"), stderr=ctx.q_bool("stderr")
    )
    await ctx.hijack(stream_type(ctx, tty))
    wants_input = ctx.q_bool("stdin") and attach.takes_input(container)
    pump = asyncio.ensure_future(_pump_input(ctx, container, wants_input, tty, keys))
    output = _AttachOutput(ctx, container.id, after, query, tty)
    copying = asyncio.ensure_future(output.until_exit(_exited_since(container, initial)))
    try:
        await asyncio.wait({pump, copying}, return_when=asyncio.FIRST_COMPLETED)
        if not _detached(pump):  # else output goes on to the exit
            await copying
    except logs.LogStoreUnavailable as exc:
        if not tty:
            ctx.writer.write(frame(SYSTEM_ERROR, f"the log stream is unreachable: {exc}".encode()))
    finally:
        for task in (pump, copying):
            task.cancel()
        await asyncio.gather(pump, copying, return_exceptions=True)
    with contextlib.suppress(ConnectionError, OSError):
        await ctx.writer.drain()


def _ended(initial: dict | None, row: dict | None) -> bool:
    """The container exited (or went) after ``initial`` was read."""
    if row is None:
        return True
    return row["state"] in ENDED and (
        initial is None or initial["state"] not in ENDED or row["state_seq"] > initial["state_seq"]
    )


async def _exited_since(container, initial: dict | None) -> None:
    """Returns once the container's next exit is recorded."""
    with changes.watch(container.id) as watch:
        while not _ended(initial, await call(state_row, container.id)):
            await watch.wait(REREAD_WAIT)


class _AttachOutput:
    """Copies the log stream to the client until the exit, then what the agent ships late.

    It polls (``logs.read`` after the last id) instead of blocking in XREAD: a blocked
    read that is cancelled can hang its task, and this one must stop the moment the
    container has exited.
    """

    def __init__(self, ctx: Context, container_id: str, after: str, query, tty: bool):
        self.ctx, self.container_id, self.last_id = ctx, container_id, after
        self.query, self.tty = query, tty

    async def copy_new(self) -> bool:
        """Whether there was anything new."""
        page = await call(logs.read, self.container_id, self.query, self.last_id)
        self.last_id = page.last_id
        if page.records:
            self.ctx.writer.write(encode_records(page.records, False, self.tty))
            await self.ctx.writer.drain()
        return bool(page.records)

    async def until_exit(self, exited) -> None:
        exit_seen = asyncio.ensure_future(exited)
        try:
            while not exit_seen.done():
                await self.copy_new()
                await asyncio.wait({exit_seen}, timeout=ATTACH_POLL)
            exit_seen.result()  # raises what stopped it
            # The agent ships a run's last lines before it reports the exit (and ``--rm``
            # lets the stream go only after a grace), so what is there now is the end.
            while await self.copy_new():
                pass
        finally:
            exit_seen.cancel()
            await asyncio.gather(exit_seen, return_exceptions=True)


def _detached(pump: asyncio.Future) -> bool:
    """The input pump ended because the client detached (a failed send is not that)."""
    return pump.done() and not pump.cancelled() and pump.exception() is None and pump.result()


async def _pump_input(ctx: Context, container, forward: bool, tty: bool, keys: bytes) -> bool:
    """Client bytes to the container's stdin (or dropped when it takes none). True when
    the client detached: it typed the detach keys, or left a terminal (whose input stays
    open for the next attach, as on dockerd). The end of a plain stdin closes it."""
    watcher = detach.Watcher(keys)
    with contextlib.suppress(ConnectionError, OSError):
        while data := await ctx.reader.read(65536):
            data, detached = watcher.feed(data) if tty else (data, False)
            if forward and data:
                await call(attach.send_input, ctx.user, container, data)
            if detached:
                return True
    if not forward:
        return False  # the CLI half-closes at once when it has no input to send
    if tty:
        return True
    # the client half-closed: its input is done (`docker run -i < file`)
    await call(attach.send_input, ctx.user, container, b"", close=True)
    return False


# ---- stats ------------------------------------------------------------------------------


@route("GET", "/containers/(?P<name>[^/]+)/stats")
async def container_stats(ctx: Context):
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    stream = ctx.q_bool("stream", True)
    one_shot = ctx.q_bool("one-shot")
    cpus = container.host.cpus or os.cpu_count() or 1
    memory = container.host.memory_bytes or 0
    sample = await _sample(container)
    if not stream:
        previous = None
        if not one_shot and sample is not None:
            await asyncio.sleep(STATS_INTERVAL)
            previous, sample = sample, await _sample(container)
        return Reply(200, docker_stats(container, sample, previous, cpus, memory))
    writer = await ctx.stream()
    previous = None
    while True:
        await writer.write(
            json.dumps(docker_stats(container, sample, previous, cpus, memory)).encode() + b"\n"
        )
        if sample is None:
            break
        await asyncio.sleep(STATS_INTERVAL)
        previous, sample = sample, await _sample(container)
    await writer.close()


async def _sample(container) -> dict | None:
    """One agent sample, or None when the container is not running (stats are zeros)."""
    row = await call(state_row, container.id)
    if row is None or row["state"] not in (State.RUNNING, State.PAUSED):
        return None
    container.state = row["state"]
    try:
        return await call(services.container_stats, container)
    except Conflict:
        return None


def _cpu(sample: dict | None, cpus: int) -> dict:
    if not sample:
        return {
            "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        }
    read_ns = logs.rfc3339_ns(sample.get("read_at") or "") or time.time_ns()
    return {
        "cpu_usage": {
            "total_usage": int(sample.get("cpu_usage_ns") or 0),
            "usage_in_kernelmode": 0,
            "usage_in_usermode": 0,
        },
        # Wall time on every CPU: CPU% = Δusage / Δsystem × online_cpus, as the CLI computes it.
        "system_cpu_usage": read_ns * cpus,
        "online_cpus": cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    }


def docker_stats(
    container, sample: dict | None, previous: dict | None, cpus: int, memory: int
) -> dict:
    now = shapes.rfc3339(timezone.now())
    data = sample or {}
    blkio = data.get("blkio") or {}
    networks = {
        name: {
            "rx_bytes": item.get("rx_bytes", 0),
            "rx_packets": item.get("rx_packets", 0),
            "rx_errors": 0,
            "rx_dropped": 0,
            "tx_bytes": item.get("tx_bytes", 0),
            "tx_packets": item.get("tx_packets", 0),
            "tx_errors": 0,
            "tx_dropped": 0,
        }
        for name, item in (data.get("networks") or {}).items()
        if isinstance(item, dict)
    }
    limit = data.get("memory_limit") or memory
    if memory and limit > memory:
        limit = memory
    return {
        "name": f"/{container.name}",
        "id": container.id,
        "read": data.get("read_at") or now if sample else shapes.NEVER,
        "preread": (previous or {}).get("read_at") or shapes.NEVER,
        "pids_stats": {"current": data.get("pids") or 0},
        "blkio_stats": {
            "io_service_bytes_recursive": [
                {"major": 0, "minor": 0, "op": "read", "value": blkio.get("read", 0)},
                {"major": 0, "minor": 0, "op": "write", "value": blkio.get("write", 0)},
            ]
            if sample
            else None
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu(sample, cpus),
        "precpu_stats": _cpu(previous, cpus),
        "memory_stats": {
            "usage": data.get("memory_usage") or 0,
            "limit": limit or 0,
            "stats": {"inactive_file": 0, "cache": data.get("memory_cache") or 0},
        }
        if sample
        else {},
        "networks": networks,
    }


# ---- events -----------------------------------------------------------------------------


ACTIONS = {
    State.CREATED: "create",
    State.RUNNING: "start",
    State.EXITED: "die",
    State.PAUSED: "pause",
    State.RESTARTING: "restart",
    State.REMOVED: "destroy",
}


@route("GET", "/events")
async def events(ctx: Context):
    """Container events of the caller's teams: those recorded since ``since`` (each team
    keeps its last 10,000), then the new ones until ``until``."""
    filters = ctx.filters()
    types = filters.get("type") or ["container"]
    until = ctx.q("until")
    since_ns = logs.parse_time(ctx.q("since"), "since") if ctx.q("since") else None
    team_ids = await call(_team_ids, ctx.user)
    layer = get_channel_layer()
    writer = await ctx.stream()
    if "container" not in types or layer is None:
        await _until(until)
        await writer.close()
        return
    channel = await layer.new_channel()
    for team_id in team_ids:  # before the replay, so nothing falls between the two
        await layer.group_add(team_group(team_id), channel)
    deadline = _deadline(until)
    last_states: dict[str, str] = {}
    images: dict[str, str] = {}
    try:
        replayed = await _replay(writer, team_ids, since_ns, deadline, filters, last_states,
                                 images)
        while deadline is None or time.time() < deadline:
            timeout = None if deadline is None else max(0.0, deadline - time.time())
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout)
            except TimeoutError:
                break
            event = message.get("event") if isinstance(message, dict) else None
            if not isinstance(event, dict) or event.get("type") != EVENT_TYPE:
                continue
            container = event.get("container") or {}
            if _key(container) in replayed:
                continue
            for line in await _docker_events(container, last_states, images, filters):
                await writer.write(json.dumps(line).encode() + b"\n")
    finally:
        for team_id in team_ids:
            with contextlib.suppress(Exception):
                await layer.group_discard(team_group(team_id), channel)
    await writer.close()


async def _replay(writer, team_ids, since_ns, deadline, filters, last_states, images) -> set:
    """The recorded events from ``since_ns``; the keys of those sent."""
    if since_ns is None:
        return set()
    until_ns = None if deadline is None else int(deadline * 1e9)
    try:
        recorded = await call(history, team_ids, since_ns, until_ns)
    except ServiceError as exc:
        await writer.write(json.dumps({"error": exc.message}).encode() + b"\n")
        return set()
    for at_ns, container in recorded:
        for line in await _docker_events(container, last_states, images, filters, at_ns):
            await writer.write(json.dumps(line).encode() + b"\n")
    return {_key(container) for _, container in recorded}


def _key(container: dict) -> tuple:
    return container.get("id"), container.get("seq"), container.get("state")


def _team_ids(user) -> list[int]:
    teams = Team.objects.all() if is_site_admin(user) else teams_of(user)
    return list(teams.values_list("pk", flat=True))


def _deadline(until: str | None) -> float | None:
    if not until:
        return None
    ns = logs.parse_time(until, "until")
    return None if ns is None else ns / 1e9


async def _until(until: str | None) -> None:
    deadline = _deadline(until)
    if deadline is None:
        await asyncio.Event().wait()
    await asyncio.sleep(max(0.0, deadline - time.time()))


async def _docker_events(
    container: dict, last_states: dict, images: dict, filters: dict, at_ns: int | None = None
) -> list[dict]:
    """The Docker events one state change stands for (a start the reports skipped, too)."""
    container_id, state = container.get("id"), container.get("state")
    if not container_id or last_states.get(container_id) == state:
        return []
    previous = last_states.get(container_id)
    last_states[container_id] = state
    if previous == State.PAUSED and state == State.RUNNING:
        actions = ["unpause"]
    elif state == State.EXITED and previous not in LIVE_STATES and container.get("started_at"):
        actions = ["start", "die"]  # it ran and exited between two reports we saw
    else:
        actions = [ACTIONS[state]] if state in ACTIONS else []
    if actions and container_id not in images:
        images[container_id] = await call(_image_of, container_id)
    events = []
    for action in actions:
        event = _event(container, action, images.get(container_id, ""), at_ns)
        if _wanted(event, filters):
            events.append(event)
    return events


def _event(container: dict, action: str, image: str, at_ns: int | None = None) -> dict:
    container_id, name = container["id"], container.get("name", "")
    attributes = {"name": name, "image": image}
    if action == "die":
        attributes["exitCode"] = str(container.get("exit_code") or 0)
    now = at_ns or time.time_ns()
    return {
        "status": action,
        "id": container_id,
        "from": image,
        "Type": "container",
        "Action": action,
        "Actor": {"ID": container_id, "Attributes": attributes},
        "scope": "local",
        "time": now // 10**9,
        "timeNano": now,
    }


def _wanted(event: dict, filters: dict) -> bool:
    name = event["Actor"]["Attributes"]["name"]
    checks = {
        "container": lambda value: event["id"].startswith(value) or value == name,
        "event": lambda value: value == event["Action"],
    }
    for key, check in checks.items():
        values = filters.get(key)
        if values and not any(check(value) for value in values):
            return False
    return True


def _image_of(container_id: str) -> str:
    from apps.containers.models import Container

    reference = (
        Container.objects.filter(pk=container_id).values_list("image_reference", flat=True).first()
    )
    return lookup.familiar(reference or "")
