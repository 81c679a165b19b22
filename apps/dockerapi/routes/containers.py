"""Container endpoints that answer at once: create, list, inspect, start, stop, restart,
kill, pause, unpause, remove, rename, update, resize, prune.

Berth's actions are messages to the agent; dockerd's return once done. So
after asking, these handlers watch the row until the agent reported the
change (``settle``), and ``docker stop x && docker rm x`` works as on dockerd.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from types import SimpleNamespace

from apps.containers import services
from apps.containers.choices import LIVE_STATES, State
from apps.containers.models import Container
from apps.dockerapi import create, lookup, shapes
from apps.dockerapi.changes import changes
from apps.dockerapi.errors import DockerError, no_such_container, no_such_image
from apps.dockerapi.http import Reply
from apps.dockerapi.router import Context, call, route
from apps.images.reference import normalize_reference
from apps.networks.models import ContainerNetwork
from apps.teams.services import can_act
from apps.volumes.models import Volume
from berth.errors import Conflict, ServiceError

SETTLE_TIMEOUT = 60.0
VOLUMES_GONE_TIMEOUT = 5.0
VOLUMES_GONE_POLL = 0.025
ROW_FIELDS = ("state", "state_seq", "exit_code", "oom_killed", "started_at", "finished_at", "error")


def state_row(container_id: str) -> dict | None:
    return Container.objects.filter(pk=container_id).values(*ROW_FIELDS).first()


async def settle(
    container_id: str, done: Callable[[dict | None], bool], timeout: float = SETTLE_TIMEOUT
) -> dict | None:
    """Read the row until ``done(row)`` (row None: removed) or the timeout passed; each
    change the control plane publishes wakes it."""
    deadline = time.monotonic() + timeout
    with changes.watch(container_id) as watch:
        while True:
            row = await call(state_row, container_id)
            remaining = deadline - time.monotonic()
            if done(row) or remaining <= 0:
                return row
            await watch.wait(remaining)


async def created_on_host(container: Container) -> dict | None:
    """Wait until the agent created a pending container (``docker run`` starts at once)."""
    return await settle(container.id, lambda row: row is None or row["state"] != State.PENDING)


def _find(ctx: Context) -> Callable[[], Container]:
    return lambda: lookup.find_container(ctx.user, ctx.match["name"])


def _find_acting(user, name: str) -> Container:
    container = lookup.find_container(user, name)
    lookup.require_act(user, container)
    return container


# ---- create, list, inspect ----------------------------------------------------------------


@route("POST", "/containers/create")
async def create_container(ctx: Context) -> Reply:
    body = await ctx.json_body(required=True)
    data = create.create_data(body, ctx.q("name"))
    container = await call(_create, ctx.user, data)
    return Reply(201, {"Id": container.id, "Warnings": []})


def _create(user, data: dict) -> Container:
    try:
        reference = normalize_reference(data["image"])
    except ValueError as exc:
        raise DockerError(400, f"invalid reference format: {exc}") from None
    if not lookup.image_rows(user, data["image"]):
        # Any 404 here makes `docker run` pull and retry; docker-py needs this wording.
        raise no_such_image(lookup.familiar(reference))
    name = data.get("name")
    if name:
        clash = lookup.containers_of(user).filter(name=name).first()
        if clash is not None:
            raise DockerError(
                409,
                f'Conflict. The container name "/{name}" is already in use by container '
                f'"{clash.id}". You have to remove (or rename) that container to be able to '
                "reuse that name.",
            )
    return services.create_container(user, data)


@route("GET", "/containers/json")
async def list_containers(ctx: Context) -> Reply:
    filters = ctx.filters()
    show_all = ctx.q_bool("all")
    limit = ctx.q_int("limit", -1)
    items = await call(_list, ctx.user, filters, show_all or limit > 0)
    if limit > 0:
        items = items[:limit]
    return Reply(200, items)


def _list(user, filters: dict[str, list[str]], show_all: bool) -> list[dict]:
    # Prefetched, not joined: the many rows share few images and hosts, whose JSON columns
    # are then decoded once each rather than once per container.
    rows = lookup.containers_of(user).select_related(None).prefetch_related(
        "image", "host", "team").defer("env", "health").order_by("-created_at")
    if not show_all and "status" not in filters:
        rows = rows.filter(state__in=LIVE_STATES)
    rows = list(rows)
    nets = {pk: SimpleNamespace(ports=ports, networks=networks) for pk, ports, networks in
            ContainerNetwork.objects.filter(pk__in=[container.pk for container in rows])
            .values_list("pk", "ports", "networks")}
    items = []
    for container in rows:
        item = shapes.summary(container, nets.get(container.pk))
        if _matches(container, item, filters):
            items.append(item)
    return items


def _matches(container: Container, item: dict, filters: dict[str, list[str]]) -> bool:
    checks = {
        "id": lambda value: container.id.startswith(value),
        "name": lambda value: value.lstrip("/") in container.name,
        "status": lambda value: item["State"] == value,
        "exited": lambda value: item["State"] == "exited" and str(container.exit_code) == value,
        "ancestor": lambda value: _same_image(container, value),
        "label": lambda value: _has_label(container.labels or {}, value),
    }
    for key, values in filters.items():
        check = checks.get(key)
        if check is None:
            raise DockerError(400, f"invalid filter '{key}'")
        if key == "label":
            if not all(check(value) for value in values):
                return False
        elif values and not any(check(value) for value in values):
            return False
    return True


def _same_image(container: Container, value: str) -> bool:
    image_id = container.image.image_id if container.image else ""
    if value.startswith("sha256:") or (len(value) >= 4 and image_id[7:].startswith(value)):
        return image_id.startswith(value) or image_id[7:].startswith(value)
    try:
        return normalize_reference(value) == container.image_reference
    except ValueError:
        return False


def _has_label(labels: dict, value: str) -> bool:
    key, has_value, wanted = value.partition("=")
    return key in labels and (not has_value or labels[key] == wanted)


@route("GET", "/containers/(?P<name>[^/]+)/json")
async def inspect_container(ctx: Context) -> Reply:
    container, net = await call(_with_network, ctx.user, ctx.match["name"])
    data = shapes.inspect(container, net)
    if ctx.q_bool("size"):
        data.update(SizeRw=0, SizeRootFs=container.image.size if container.image else 0)
    return Reply(200, data)


def _with_network(user, name: str) -> tuple[Container, ContainerNetwork | None]:
    container = lookup.find_container(user, name)
    return container, ContainerNetwork.objects.filter(pk=container.pk).first()


# ---- lifecycle ------------------------------------------------------------------------------


@route("POST", "/containers/(?P<name>[^/]+)/start")
async def start_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    row = await created_on_host(container)
    if row is None:
        raise no_such_container(ctx.match["name"])
    if row["state"] in LIVE_STATES:
        return Reply(304)
    container.state = row["state"]
    try:
        await call(services.start_container, container)
    except ServiceError:
        if container.auto_remove:  # `docker run --rm` waits for the removal even then
            with contextlib.suppress(ServiceError):
                await call(services.remove_container, container, True)
        raise
    seq = row["state_seq"]
    await settle(
        container.id,
        lambda now: (
            now is None
            or (now["state_seq"] > seq and now["state"] not in (State.CREATED, State.PENDING))
        ),
    )
    return Reply(204)


@route("POST", "/containers/(?P<name>[^/]+)/stop")
async def stop_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    if container.state not in LIVE_STATES:
        return Reply(304)
    timeout = _timeout(ctx)
    await call(services.stop_container, container, timeout)
    wait = (timeout if timeout is not None else container.stop_timeout) + SETTLE_TIMEOUT
    await settle(container.id, _stopped, wait)
    return Reply(204)


def _stopped(row: dict | None) -> bool:
    return row is None or row["state"] not in LIVE_STATES


def _timeout(ctx: Context) -> int | None:
    timeout = ctx.q_int("t", ctx.q_int("timeout"))
    if timeout is not None and timeout < 0:
        return 0  # dockerd: -1 waits forever; Berth's longest is its maximum
    return timeout


@route("POST", "/containers/(?P<name>[^/]+)/restart")
async def restart_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    row = await created_on_host(container)
    if row is None:
        raise no_such_container(ctx.match["name"])
    container.state = row["state"]
    timeout = _timeout(ctx)
    await call(services.restart_container, container, timeout)
    started = row["started_at"]
    wait = (timeout if timeout is not None else container.stop_timeout) + SETTLE_TIMEOUT
    await settle(
        container.id,
        lambda now: (
            now is None or (now["started_at"] != started and now["state"] != State.RESTARTING)
        ),
        wait,
    )
    return Reply(204)


@route("POST", "/containers/(?P<name>[^/]+)/kill")
async def kill_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    if container.state not in LIVE_STATES:
        raise DockerError(
            409,
            f"Cannot kill container: {ctx.match['name']}: container {container.id} is not running",
        )
    number = services.parse_signal(ctx.q("signal") or "KILL")
    await call(services.kill_container, container, number)
    if number == 9:
        await settle(container.id, _stopped, 10)
    return Reply(204)


@route("POST", "/containers/(?P<name>[^/]+)/pause")
async def pause_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    if container.state != State.RUNNING:
        raise DockerError(409, f"container {container.id} is not running")
    await call(services.pause_container, container)
    await settle(container.id, lambda row: row is None or row["state"] != State.RUNNING)
    return Reply(204)


@route("POST", "/containers/(?P<name>[^/]+)/unpause")
async def unpause_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    if container.state != State.PAUSED:
        raise DockerError(409, f"container {container.id} is not paused")
    await call(services.unpause_container, container)
    await settle(container.id, lambda row: row is None or row["state"] != State.PAUSED)
    return Reply(204)


@route("DELETE", "/containers/(?P<name>[^/]+)")
async def remove_container(ctx: Context) -> Reply:
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    force = ctx.q_bool("force")
    if container.state in LIVE_STATES and not force:
        raise DockerError(
            409,
            f'cannot remove container "/{container.name}": container is running: stop the '
            "container before removing or force remove",
        )
    if container.state == State.PENDING:
        await created_on_host(container)
    volumes = ctx.q_bool("v")
    if container.state != State.REMOVING:
        try:
            await call(services.remove_container, container, force, volumes)
        except Conflict as exc:
            raise DockerError(409, exc.message) from None
    await settle(container.id, lambda row: row is None)
    if volumes:  # their report travels apart from the container's: `volume ls` may be next
        await _until_gone(container.team_id, _anonymous_volumes(container))
    return Reply(204)


def _anonymous_volumes(container: Container) -> list[str]:
    mounts = (container.options or {}).get("mounts") or []
    return [m["source"] for m in mounts if isinstance(m, dict) and m.get("anonymous")]


async def _until_gone(team_id: int, volume_names: list[str]) -> None:
    deadline = time.monotonic() + VOLUMES_GONE_TIMEOUT
    while volume_names and time.monotonic() < deadline:
        if not await call(_volumes_left, team_id, volume_names):
            return
        await asyncio.sleep(VOLUMES_GONE_POLL)


def _volumes_left(team_id: int, volume_names: list[str]) -> bool:
    return Volume.objects.filter(team_id=team_id, name__in=volume_names).exists()


@route("POST", "/containers/(?P<name>[^/]+)/rename")
async def rename_container(ctx: Context) -> Reply:
    name = (ctx.q("name") or "").lstrip("/")
    if not name:
        raise DockerError(400, "new name is required")
    await call(_rename, ctx.user, ctx.match["name"], name)
    return Reply(204)


def _rename(user, current: str, name: str) -> None:
    container = _find_acting(user, current)
    clash = (
        lookup.containers_of(user)
        .filter(name=name, team=container.team)
        .exclude(pk=container.pk)
        .first()
    )
    if clash is not None:
        raise DockerError(
            409,
            f'Conflict. The container name "/{name}" is already in use by '
            f'container "{clash.id}". You have to remove (or rename) that '
            "container to be able to reuse that name.",
        )
    services.rename_container(container, name)


@route("POST", "/containers/(?P<name>[^/]+)/update")
async def update_container(ctx: Context) -> Reply:
    body = await ctx.json_body()
    data = create.update_data(body)
    container = await call(_find_acting, ctx.user, ctx.match["name"])
    if data:
        await call(services.update_container, container, data)
    return Reply(200, {"Warnings": []})


@route("POST", "/containers/(?P<name>[^/]+)/resize")
async def resize_container(ctx: Context) -> Reply:
    await call(_find(ctx))
    return Reply(200)


@route("POST", "/containers/prune")
async def prune_containers(ctx: Context) -> Reply:
    removed = await call(_prune, ctx.user)
    for container_id in removed:
        await settle(container_id, lambda row: row is None, 30)
    return Reply(200, {"ContainersDeleted": removed or None, "SpaceReclaimed": 0})


def _prune(user) -> list[str]:
    removed = []
    for container in lookup.containers_of(user).filter(state=State.EXITED):
        if can_act(user, container.team):
            services.remove_container(container)
            removed.append(container.id)
    return removed
