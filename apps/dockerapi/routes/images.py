"""Image endpoints: list, inspect, pull (create), import, push, tag, remove, history,
save (get), load, prune. Long work is an Operation (``apps.images.services``); its
progress is streamed as the JSON lines the CLI prints."""

from __future__ import annotations

import asyncio
import fnmatch
import json

from apps.dockerapi import lookup, shapes
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import JSON, Reply
from apps.dockerapi.operations import follow_operation, upload_from_body, wait_finished
from apps.dockerapi.router import Context, call, route
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.images import instructions, services
from apps.images.reference import normalize_reference, parse_reference
from apps.operations import services as operation_services
from apps.teams.services import is_site_admin
from berth.errors import Conflict, ServiceError

FILE_CHUNK = 1024 * 1024


def _line(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\r\n"


# ---- list and inspect ---------------------------------------------------------------------


@route("GET", "/images/json")
async def list_images(ctx: Context) -> Reply:
    filters = ctx.filters()
    return Reply(200, await call(_list_images, ctx.user, filters, ctx.q_bool("all")))


def _list_images(user, filters: dict[str, list[str]], show_all: bool) -> list[dict]:
    groups: dict[str, list] = {}
    for row in lookup.images_of(user):
        groups.setdefault(row.image_id or row.digest or row.reference, []).append(row)
    items = [shapes.image_summary(rows) for rows in groups.values()]
    wanted = filters.get("reference", [])
    if wanted:  # as dockerd: the matching images, each with its matching references only
        for item in items:
            item["RepoTags"] = [tag for tag in item["RepoTags"] if _tag_matches(tag, wanted)]
            item["RepoDigests"] = [digest for digest in item.get("RepoDigests") or []
                                   if _tag_matches(digest.split("@", 1)[0], wanted)]
        items = [item for item in items if item["RepoTags"] or item["RepoDigests"]]
    for value in filters.get("dangling", []):
        dangling = value.lower() in ("1", "true")
        items = [item for item in items if (not item["RepoTags"]) == dangling]
    for label in filters.get("label", []):
        key, has_value, value = label.partition("=")
        items = [
            item
            for item in items
            if key in item["Labels"] and (not has_value or item["Labels"][key] == value)
        ]
    items.sort(key=lambda item: item["Created"], reverse=True)
    return items


def _tag_matches(tag: str, patterns: list[str]) -> bool:
    name = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    return any(fnmatch.fnmatchcase(tag, pattern) or fnmatch.fnmatchcase(name, pattern)
               for pattern in patterns)


@route("GET", "/images/(?P<name>.+)/json")
async def inspect_image(ctx: Context) -> Reply:
    return Reply(200, await call(_inspect_image, ctx.user, ctx.match["name"]))


def _inspect_image(user, name: str) -> dict:
    image = lookup.find_image(user, name)
    rows = [row for row in lookup.images_of(user).filter(image_id=image.image_id)] or [image]
    rows.sort(key=lambda row: row.pk != image.pk)
    return shapes.image_inspect(rows, services.inspect_image(image))


@route("GET", "/images/(?P<name>.+)/history")
async def image_history(ctx: Context) -> Reply:
    return Reply(200, await call(_history, ctx.user, ctx.match["name"]))


def _history(user, name: str) -> list[dict]:
    image = lookup.find_image(user, name)
    return shapes.history(image, services.image_history(image))


# ---- pull and import (POST /images/create) ------------------------------------------------


@route("POST", "/images/create")
async def create_image(ctx: Context):
    source = ctx.q("fromSrc")
    if source is not None:
        return await _import(ctx, source)
    from_image = ctx.q("fromImage") or ""
    if not from_image:
        raise DockerError(400, "fromImage or fromSrc is required")
    reference = _pull_reference(from_image, ctx.q("tag") or "")
    if ctx.q("tag") is None and not _names_version(from_image):  # docker pull -a
        operation = await call(services.pull_image, ctx.user,
                               {"reference": reference, "all_tags": True})
        await follow_operation(ctx, operation.id, PullProgress(reference, all_tags=True))
        return None
    operation = await call(_start_pull, ctx.user, reference)
    if operation is None:
        writer = await ctx.stream()
        await writer.write(
            _line({"status": f"Status: Image is up to date for {_shown(reference)}"})
        )
        await writer.close()
        return None
    await follow_operation(ctx, operation.id, PullProgress(reference))
    return None


def _pull_reference(from_image: str, tag: str) -> str:
    text = from_image
    if tag:
        text = f"{from_image}@{tag}" if tag.startswith("sha256:") else f"{from_image}:{tag}"
    try:
        return normalize_reference(text)
    except ValueError as exc:
        raise DockerError(400, f"invalid reference format: {exc}") from None


def _names_version(from_image: str) -> bool:
    """A tag or digest in ``fromImage`` itself (the CLI sends ``tag`` apart, except for -a)."""
    last = from_image.rsplit("/", 1)[-1]
    return ":" in last or "@" in last


def _start_pull(user, reference: str):
    """The pull operation; None when the caller may not re-pull a shared image it can use."""
    try:
        return services.pull_image(user, {"reference": reference})
    except Conflict:
        if lookup.image_rows(user, reference):
            return None
        raise


def _shown(reference: str) -> str:
    return lookup.familiar(reference)


class PullProgress:
    """Turns an Operation's progress into ``docker pull`` lines."""

    def __init__(self, reference: str, *, all_tags: bool = False):
        self.reference = reference
        self.all_tags = all_tags
        self.layers: dict[str, str] = {}

    def first(self) -> list[dict]:
        parsed = parse_reference(self.reference)
        tag = "all tags" if self.all_tags else parsed.tag or parsed.digest or "latest"
        return [{"status": f"Pulling from {lookup.familiar(parsed.name)}", "id": tag}]

    def progress(self, progress: dict) -> list[dict]:
        lines = []
        layers = progress.get("layers") if isinstance(progress.get("layers"), dict) else {}
        for digest, layer in layers.items():
            if not isinstance(layer, dict):
                continue
            short = str(digest).removeprefix("sha256:")[:12]
            state = layer.get("state")
            if state == self.layers.get(short) and state != "downloading":
                continue
            self.layers[short] = state
            status = {
                "waiting": "Pulling fs layer",
                "downloading": "Downloading",
                "exists": "Already exists",
                "extracting": "Extracting",
                "done": "Pull complete",
            }.get(state, str(state))
            line = {"status": status, "progressDetail": {}, "id": short}
            if state == "downloading":
                line["progressDetail"] = {
                    "current": layer.get("done", 0),
                    "total": layer.get("total", 0),
                }
            lines.append(line)
        return lines

    def success(self, result: dict) -> list[dict]:
        images = result.get("images") or [{}]
        if self.all_tags:
            return [{"status": f"Status: Downloaded newer image for "
                               f"{_shown(str(image.get('reference', '')))}"}
                    for image in images if isinstance(image, dict)]
        digest = images[0].get("digest", "") if isinstance(images[0], dict) else ""
        shown = _shown(self.reference)
        lines = [{"status": f"Digest: {digest}"}] if digest else []
        if self.layers and all(state == "exists" for state in self.layers.values()):
            lines.append({"status": f"Status: Image is up to date for {shown}"})
        else:
            lines.append({"status": f"Status: Downloaded newer image for {shown}"})
        return lines

    def failure_status(self, error: str) -> tuple[int, str]:
        name = lookup.familiar(parse_reference(self.reference).name)
        lowered = error.lower()
        if any(word in lowered for word in ("not found", "unknown", "denied", "unauthorized")):
            return 404, (
                f"pull access denied for {name}, repository does not exist or may "
                f"require 'docker login': {error}"
            )
        return 500, error


async def _import(ctx: Context, source: str):
    if source != "-":
        raise DockerError(400, "only fromSrc=- (the archive as the request body) is supported")
    repo = ctx.q("repo") or ""
    if not repo:
        raise DockerError(400, "repo is required: Berth names every imported image")
    tag = ctx.q("tag") or ""
    reference = f"{repo}:{tag}" if tag else repo
    changes = instructions.parse_changes(ctx.q_list("changes"))
    upload = upload_from_body(ctx)
    operation = await call(
        services.import_image, ctx.user, upload, reference=reference, base_url=ctx.web_url,
        changes=changes,
    )
    await follow_operation(ctx, operation.id, ImportProgress())
    return None


class ImportProgress:
    def first(self) -> list[dict]:
        return []

    def progress(self, progress: dict) -> list[dict]:
        return []

    def success(self, result: dict) -> list[dict]:
        images = result.get("images") or [{}]
        image_id = images[0].get("image_id", "") if isinstance(images[0], dict) else ""
        return [{"status": image_id}]

    def failure_status(self, error: str) -> tuple[int, str]:
        return 400, error


# ---- push, tag, remove ------------------------------------------------------------------


@route("POST", "/images/(?P<name>.+)/push")
async def push_image(ctx: Context):
    name = ctx.match["name"]
    tag = ctx.q("tag") or ""
    reference = f"{name}:{tag}" if tag and "@" not in name else name
    operation = await call(_start_push, ctx.user, reference)
    await follow_operation(ctx, operation.id, PushProgress(operation.target))
    return None


def _start_push(user, reference: str):
    image = lookup.find_image(user, reference)
    return services.push_image(user, image, {})


class PushProgress:
    def __init__(self, reference: str):
        self.reference = reference
        self.layers: dict[str, str] = {}

    def first(self) -> list[dict]:
        name = lookup.familiar(parse_reference(self.reference).name)
        return [{"status": f"The push refers to repository [{name}]"}]

    def progress(self, progress: dict) -> list[dict]:
        lines = []
        layers = progress.get("layers") if isinstance(progress.get("layers"), dict) else {}
        for digest, layer in layers.items():
            short = str(digest).removeprefix("sha256:")[:12]
            state = layer.get("state") if isinstance(layer, dict) else None
            if state == self.layers.get(short):
                continue
            self.layers[short] = state
            status = {"exists": "Layer already exists", "done": "Pushed"}.get(state, "Preparing")
            lines.append({"status": status, "progressDetail": {}, "id": short})
        return lines

    def success(self, result: dict) -> list[dict]:
        images = result.get("images") or [{}]
        image = images[0] if isinstance(images[0], dict) else {}
        digest = result.get("digest") or image.get("digest", "")
        tag = parse_reference(self.reference).tag or "latest"
        size = image.get("size", 0)
        return [
            {"status": f"{tag}: digest: {digest} size: {size}"},
            {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}},
        ]

    def failure_status(self, error: str) -> tuple[int, str]:
        return 500, error


@route("POST", "/images/(?P<name>.+)/tag")
async def tag_image(ctx: Context) -> Reply:
    repo = ctx.q("repo") or ""
    if not repo:
        raise DockerError(400, "repository name (repo) is required")
    tag = ctx.q("tag") or ""
    target = f"{repo}:{tag}" if tag else repo
    await call(_tag, ctx.user, ctx.match["name"], target)
    return Reply(201)


def _tag(user, name: str, target: str) -> None:
    image = lookup.find_image(user, name)
    services.tag_image(user, image, {"reference": target})


@route("DELETE", "/images/(?P<name>.+)")
async def remove_image(ctx: Context) -> Reply:
    answer = await call(_remove, ctx.user, ctx.match["name"], ctx.q_bool("force"))
    return Reply(200, answer)


def _remove(user, name: str, force: bool) -> list[dict]:
    image = lookup.find_image(user, name)
    lookup.require_act(user, image)
    try:
        answer = services.remove_image(image, force=force)
    except ServiceError as exc:
        if exc.status == 409 or "used by" in exc.message or "referenced by" in exc.message:
            raise DockerError(
                409,
                f"conflict: unable to remove repository reference "
                f'"{name}" (must force) - {exc.message}',
            ) from None
        raise
    items = [{"Untagged": lookup.familiar(ref)} for ref in answer["untagged"]]
    items += [{"Deleted": image_id} for image_id in answer["deleted"]]
    return items


# ---- save and load ----------------------------------------------------------------------


@route("GET", "/images/get")
async def save_images(ctx: Context):
    await _save(ctx, ctx.q_list("names"))


@route("GET", "/images/(?P<name>.+)/get")
async def save_image(ctx: Context):
    await _save(ctx, [ctx.match["name"]])


async def _save(ctx: Context, names: list[str]) -> None:
    if not names:
        raise DockerError(400, "names is required: the images to save")
    references = await call(_references_to_save, ctx.user, names)
    operation = await call(
        services.save_images, ctx.user, {"references": references}, base_url=ctx.web_url
    )
    row = await wait_finished(operation.id)
    if row.status != "succeeded":
        raise DockerError(500, f"saving failed: {row.error}")
    path, _size = await call(operation_services.archive_of, row)
    writer = await ctx.stream("application/x-tar")
    with open(path, "rb") as archive:
        while chunk := await asyncio.to_thread(archive.read, FILE_CHUNK):
            await writer.write(chunk)
    await writer.close()


def _references_to_save(user, names: list[str]) -> list[str]:
    references = []
    for name in names:
        image = lookup.find_image(user, name)
        references.append(image.reference)
    return references


@route("POST", "/images/load")
async def load_images(ctx: Context):
    upload = upload_from_body(ctx)
    operation = await call(services.load_image, ctx.user, upload, base_url=ctx.web_url)
    row = await wait_finished(operation.id)
    if row.status != "succeeded":
        raise DockerError(400, f"loading failed: {row.error}")
    writer = await ctx.stream(JSON)
    for image in row.result.get("images") or []:
        reference = image.get("reference", "") if isinstance(image, dict) else ""
        if reference.startswith("sha256:") or not reference:
            text = f"Loaded image ID: {image.get('image_id', reference)}\n"
        else:
            text = f"Loaded image: {lookup.familiar(reference)}\n"
        await writer.write(_line({"stream": text}))
    await writer.close()
    return None


@route("POST", "/images/prune")
async def prune_images(ctx: Context) -> Reply:
    filters = ctx.filters()
    everything = any(value.lower() in ("0", "false") for value in filters.get("dangling", []))
    return Reply(200, await call(_prune, ctx.user, everything))


def _prune(user, everything: bool) -> dict:
    if everything and not is_site_admin(user):
        everything = False  # only site admins may remove other teams' unused images
    deleted, reclaimed = [], 0
    for host in Host.objects.filter(status=HostStatus.ONLINE):
        answer = services.prune_images(user, {"all": everything, "host": host.name})
        deleted += answer["deleted"]
        reclaimed += answer["reclaimed"]
    return {
        "ImagesDeleted": [{"Deleted": item} for item in deleted] or None,
        "SpaceReclaimed": reclaimed,
    }


@route("GET", "/images/search")
async def search_images(ctx: Context) -> Reply:
    raise DockerError(501, "Berth does not search registries")
