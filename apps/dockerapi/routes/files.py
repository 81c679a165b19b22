"""A container's files (``apps.containers.files``): top, diff, cp (archive HEAD/GET/PUT),
export and commit."""

from __future__ import annotations

import asyncio
import base64
import json

from apps.containers import files
from apps.dockerapi import lookup
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import Reply
from apps.dockerapi.operations import upload_from_body
from apps.dockerapi.router import Context, call, route
from apps.images import instructions
from berth.errors import NotFound

STAT_HEADER = "X-Docker-Container-Path-Stat"
TAR = "application/x-tar"
CHUNK = 1024 * 1024
CHANGE_KINDS = {"C": 0, "A": 1, "D": 2, 0: 0, 1: 1, 2: 2}


def _stat_header(stat: dict) -> tuple[str, str]:
    # Standard base64, as the Go client decodes it.
    return STAT_HEADER, base64.b64encode(json.dumps(stat).encode()).decode()


@route("GET", "/containers/(?P<name>[^/]+)/top")
async def top(ctx: Context) -> Reply:
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    if container.state != "running":
        raise DockerError(409, f"container {container.id} is not running")
    return Reply(200, await call(files.container_top, container, ctx.q("ps_args") or ""))


@route("GET", "/containers/(?P<name>[^/]+)/changes")
async def changes(ctx: Context) -> Reply:
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    found = await call(files.container_changes, container)
    return Reply(
        200,
        [
            {"Path": item.get("Path", ""), "Kind": CHANGE_KINDS.get(item.get("Kind"), 0)}
            for item in found
            if isinstance(item, dict)
        ],
    )


def _path(ctx: Context) -> str:
    path = ctx.q("path")
    if not path:
        raise DockerError(400, "path is required")
    return path


@route("HEAD", "/containers/(?P<name>[^/]+)/archive")
async def stat_path(ctx: Context) -> Reply:
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    path = _path(ctx)
    try:
        stat = await call(files.path_stat, ctx.user, container, path)
    except NotFound:
        raise DockerError(
            404, f"Could not find the file {path} in container {ctx.match['name']}"
        ) from None
    return Reply(200, headers=[_stat_header(stat)])


@route("GET", "/containers/(?P<name>[^/]+)/archive")
async def copy_from(ctx: Context):
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    path = _path(ctx)
    try:
        archive = await call(files.copy_from, ctx.user, container, path, base_url=ctx.web_url)
    except NotFound:
        raise DockerError(
            404, f"Could not find the file {path} in container {ctx.match['name']}"
        ) from None
    await _send_archive(ctx, archive, [_stat_header(archive.stat or {})])


async def _send_archive(ctx: Context, archive, headers: list) -> None:
    try:
        writer = await ctx.stream(TAR, headers=headers)
        while chunk := await asyncio.to_thread(archive.handle.read, CHUNK):
            await writer.write(chunk)
        await writer.close()
    finally:
        archive.handle.close()


@route("PUT", "/containers/(?P<name>[^/]+)/archive")
async def copy_to(ctx: Context) -> Reply:
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    path = _path(ctx)
    upload = upload_from_body(ctx)
    try:
        await call(
            files.copy_to,
            ctx.user,
            container,
            path,
            upload,
            base_url=ctx.web_url,
            no_overwrite_dir_non_dir=ctx.q_bool("noOverwriteDirNonDir"),
        )
    except NotFound as exc:
        raise DockerError(404, exc.message) from None
    return Reply(200)  # docker-py's put_archive checks for exactly 200


@route("GET", "/containers/(?P<name>[^/]+)/export")
async def export(ctx: Context):
    container = await call(lookup.find_container, ctx.user, ctx.match["name"])
    archive = await call(files.export_container, ctx.user, container, base_url=ctx.web_url)
    await _send_archive(ctx, archive, [])


@route("POST", "/commit")
async def commit(ctx: Context) -> Reply:
    body = await ctx.json_body()
    name = ctx.q("container") or ""
    repo, tag = ctx.q("repo") or "", ctx.q("tag") or ""
    config = body if isinstance(body, dict) else {}
    from_body = {key: value for key, value in config.items()
                 if key in files.COMMIT_CHANGES and value not in (None, [], {}, "")}
    # `--change` instructions apply after the body's config, as dockerd applies them.
    changes = instructions.merge(from_body, instructions.parse_changes(ctx.q_list("changes")))
    data = {
        "reference": f"{repo}:{tag}" if repo and tag else repo,
        "changes": changes or None,
        "author": ctx.q("author") or "",
        "comment": ctx.q("comment") or "",
        "pause": ctx.q_bool("pause", True),
    }
    image = await call(_commit, ctx.user, name, data)
    return Reply(201, {"Id": image.image_id})


def _commit(user, name: str, data: dict):
    container = lookup.find_container(user, name)
    return files.commit_container(user, container, data)
