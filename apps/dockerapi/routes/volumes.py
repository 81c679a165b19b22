"""Volume endpoints over ``apps.volumes.services``: create, list, inspect, remove, prune."""

from __future__ import annotations

from apps.dockerapi import lookup, shapes
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import Reply
from apps.dockerapi.router import Context, call, route
from apps.teams.services import restrict_to_teams
from apps.volumes import services
from apps.volumes.models import Volume


def volumes_of(user):
    return restrict_to_teams(Volume.objects.select_related("host", "team"), user)


def find_volume(user, name: str) -> Volume:
    volume = volumes_of(user).filter(name=name).first()
    if volume is None:
        raise DockerError(404, f"get {name}: no such volume")
    return volume


def volume_json(volume: Volume, mountpoint: str = "") -> dict:
    data = {
        "Name": volume.name,
        "Driver": volume.driver or "local",
        "Mountpoint": mountpoint,
        "CreatedAt": shapes.rfc3339(volume.created),
        "Labels": dict(volume.labels or {}),
        "Scope": "local",
        "Options": {},
    }
    if volume.size is not None:
        data["UsageData"] = {"Size": volume.size, "RefCount": -1}
    return data


@route("POST", "/volumes/create")
async def create_volume(ctx: Context) -> Reply:
    body = await ctx.json_body()
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object")
    if body.get("DriverOpts"):
        raise DockerError(400, "Berth's local volumes take no driver options")
    data = {
        "name": body.get("Name") or None,
        "labels": body.get("Labels") or {},
        "driver": body.get("Driver") or "local",
    }
    volume, _ = await call(services.create_volume, ctx.user, data)
    return Reply(201, volume_json(volume))


@route("GET", "/volumes")
async def list_volumes(ctx: Context) -> Reply:
    filters = ctx.filters()
    return Reply(200, {"Volumes": await call(_list, ctx.user, filters), "Warnings": []})


def _list(user, filters: dict[str, list[str]]) -> list[dict]:
    rows = volumes_of(user).order_by("name")
    for name in filters.get("name", []):
        rows = rows.filter(name__contains=name)
    for value in filters.get("dangling", []):
        used = set()
        for options in lookup.containers_of(user).values_list("options", flat=True):
            used |= {m.get("name") for m in (options or {}).get("mounts") or []}
        dangling = value.lower() in ("1", "true")
        rows = [row for row in rows if (row.engine_name not in used) == dangling]
    items = [volume_json(row) for row in rows]
    for label in filters.get("label", []):
        key, has_value, value = label.partition("=")
        items = [
            i for i in items if key in i["Labels"] and (not has_value or i["Labels"][key] == value)
        ]
    return items


@route("GET", "/volumes/(?P<name>[^/]+)")
async def inspect_volume(ctx: Context) -> Reply:
    return Reply(200, await call(_inspect, ctx.user, ctx.match["name"]))


def _inspect(user, name: str) -> dict:
    volume = find_volume(user, name)
    details = services.inspect_volume(volume)
    return volume_json(volume, details.get("mountpoint", ""))


@route("DELETE", "/volumes/(?P<name>[^/]+)")
async def remove_volume(ctx: Context) -> Reply:
    await call(_remove, ctx.user, ctx.match["name"], ctx.q_bool("force"))
    return Reply(204)


def _remove(user, name: str, force: bool) -> None:
    volume = find_volume(user, name)
    lookup.require_act(user, volume)
    try:
        services.remove_volume(volume, force=force)
    except Exception as exc:
        if getattr(exc, "status", None) == 409:
            raise DockerError(409, f"remove {name}: volume is in use - {exc}") from None
        raise


@route("POST", "/volumes/prune")
async def prune_volumes(ctx: Context) -> Reply:
    filters = ctx.filters()
    everything = any(v.lower() in ("1", "true") for v in filters.get("all", []))
    data = {"all": everything, "labels": filters.get("label") or None}
    answer = await call(services.prune_volumes, ctx.user, data)
    return Reply(
        200, {"VolumesDeleted": answer["deleted"] or None, "SpaceReclaimed": answer["reclaimed"]}
    )
