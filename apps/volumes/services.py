"""Everything that changes a volume: create, inspect (size), remove, prune; the volumes a
new container mounts; and what agents report about volumes they removed.

The agent on the volume's host is the authority on whether a volume is in use
(a container in any state but removed); the control plane checks its own rows
first so the common refusal needs no round trip.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.containers.models import Container
from apps.hosts import scheduling
from apps.hosts.models import Host
from apps.hosts.services import call_host
from apps.teams import policy as team_policy
from apps.teams.services import is_site_admin, resolve_team_for_create
from apps.volumes.models import Volume
from berth.errors import AgentError, Conflict, InvalidInput, NotFound
from berth.timestamps import parse_iso

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}")
MAX_LABELS = 256
MAX_LABEL_TEXT = 4096


# ---- names and labels ---------------------------------------------------------------------


def parse_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise InvalidInput(
            f"invalid volume name {value!r}: 2-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field=field,
        )
    return value


def parse_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise InvalidInput(
            f"'labels' must be an object of at most {MAX_LABELS} strings", field="labels"
        )
    for key, text in value.items():
        bad_key = not key or len(key) > 256 or "=" in key or any(ord(c) < 32 for c in key)
        if bad_key or not isinstance(text, str) or len(text) > MAX_LABEL_TEXT or "\0" in text:
            raise InvalidInput(
                f"invalid label {key!r}: names and values are strings", field="labels"
            )
    return dict(value)


def engine_name(team, name: str) -> str:
    """The volume's directory name on the host; team slugs never contain a '.'."""
    return f"{team.slug}.{name}"


# ---- create -------------------------------------------------------------------------------


def create_volume(user, data: Any) -> tuple[Volume, bool]:
    """``docker volume create``: the volume and whether it is new (an existing one is kept)."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    name = data.get("name")
    name = parse_name(name) if name not in (None, "") else secrets.token_hex(16)
    labels = parse_labels(data.get("labels"))
    driver = data.get("driver") or "local"
    if driver != "local":
        raise InvalidInput(f'unknown volume driver {driver!r}: only "local"', field="driver")
    host = scheduling.host_for_resource(team, data.get("host") or None)
    existing = Volume.objects.filter(team=team, host=host, name=name).first()
    if existing is not None:
        return existing, False
    report = _call(host, "agent.volume_create", [engine_name(team, name), labels])
    try:
        with transaction.atomic():
            volume = Volume.objects.create(
                team=team,
                host=host,
                name=name,
                engine_name=engine_name(team, name),
                labels=report.get("labels") or labels,
                **_report_fields(report),
            )
    except IntegrityError:
        return Volume.objects.get(team=team, host=host, name=name), False
    return volume, True


def _report_fields(report: dict) -> dict:
    fields: dict[str, Any] = {}
    created = parse_iso(report.get("created"))
    if created is not None:
        fields["created"] = created
    if isinstance(report.get("size"), int):
        fields.update(size=report["size"], size_updated=timezone.now())
    return fields


# ---- reads --------------------------------------------------------------------------------


def inspect_volume(volume: Volume) -> dict:
    """The agent's view (size on disk, which containers use it); the row's size is updated."""
    report = _call(volume.host, "agent.volume_inspect", [volume.engine_name])
    fields = _report_fields(report)
    fields.pop("created", None)
    if fields:
        Volume.objects.filter(pk=volume.pk).update(**fields)
        for key, value in fields.items():
            setattr(volume, key, value)
    return {"in_use_by": containers_using(volume), "mountpoint": report.get("mountpoint", "")}


def refresh_sizes(volumes) -> None:
    """Ask each online host of these volumes for their sizes (one call per host)."""
    by_host: dict[int, list[Volume]] = {}
    for volume in volumes:
        by_host.setdefault(volume.host_id, []).append(volume)
    for rows in by_host.values():
        host = rows[0].host
        if not host.is_online:
            continue
        reports = call_host(host, "agent.volume_list", [], settings.BERTH_CONTAINER_RPC_TIMEOUT)
        sizes = {r.get("name"): r.get("size") for r in reports or [] if isinstance(r, dict)}
        now = timezone.now()
        for volume in rows:
            size = sizes.get(volume.engine_name)
            if isinstance(size, int):
                Volume.objects.filter(pk=volume.pk).update(size=size, size_updated=now)
                volume.size, volume.size_updated = size, now


def containers_using(volume: Volume) -> list[str]:
    """Ids of containers on the volume's host whose mounts name it (any state)."""
    rows = Container.objects.filter(host=volume.host).values_list("id", "options")
    return sorted(
        container_id
        for container_id, options in rows
        if any(m.get("name") == volume.engine_name for m in (options or {}).get("mounts") or [])
    )


# ---- remove and prune ---------------------------------------------------------------------


def remove_volume(volume: Volume, force: bool = False) -> dict:
    """``docker volume rm``: refused (409) while any container uses it, force or not."""
    users = containers_using(volume)
    if users:
        raise Conflict(
            f"volume {volume.name} is in use by container(s) {', '.join(u[:12] for u in users)}: "
            "remove them first"
        )
    try:
        answer = _call(volume.host, "agent.volume_remove", [volume.engine_name, bool(force)])
    except NotFound:
        answer = {"reclaimed": 0}  # gone from the host already: only the row is left
    Volume.objects.filter(pk=volume.pk).delete()
    return {"removed": [volume.name], "reclaimed": int(answer.get("reclaimed") or 0)}


def prune_volumes(user, data: Any) -> dict:
    """Remove the caller's unused volumes: anonymous ones, or all with ``all``; ``labels``
    keeps only volumes with each given label (a null value matches any value)."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    everything = data.get("all", False)
    if not isinstance(everything, bool):
        raise InvalidInput("'all' must be true or false", field="all")
    wanted = _label_filter(data.get("labels"))
    rows = Volume.objects.filter(team=team).select_related("host")
    if not everything:
        rows = rows.filter(anonymous=True)
    deleted, reclaimed = [], 0
    for volume in rows:
        if not _has_labels(volume.labels, wanted) or not volume.host.is_online:
            continue
        try:
            result = remove_volume(volume)
        except Conflict:
            continue
        deleted.append(volume.name)
        reclaimed += result["reclaimed"]
    return {"deleted": deleted, "reclaimed": reclaimed}


def _label_filter(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, list):  # ["key", "key=value"], as docker's label filters
        if not all(isinstance(item, str) for item in value):
            raise InvalidInput('\'labels\' must list "key" or "key=value"', field="labels")
        return {k: (v if sep else None) for k, sep, v in (i.partition("=") for i in value)}
    if isinstance(value, dict):
        return value
    raise InvalidInput("'labels' must be an object or a list of \"key=value\"", field="labels")


def _has_labels(labels: dict, wanted: dict) -> bool:
    return all(k in labels and (v is None or labels[k] == v) for k, v in wanted.items())


def forget_removed(host_name: str, names: list) -> int:
    """Drop the rows of volumes an agent removed on its own (``rm -v``)."""
    if not isinstance(names, list):
        return 0
    names = [name for name in names if isinstance(name, str)]
    deleted, _ = Volume.objects.filter(host__name=host_name, engine_name__in=names).delete()
    return deleted


# ---- the mounts of a new container ----------------------------------------------------------


def prepare_mounts(user, team, image, options: dict) -> dict:
    """The container's options with every mount ready for its host: bind paths allowed by
    the team's policy, named volumes found or made (as docker run does), one anonymous
    volume per path the image declares in ``Volumes`` that no mount covers."""
    mounts = list(options.get("mounts") or [])
    declared = sorted(((image.config or {}).get("Volumes") or {}).keys())
    if not mounts and not declared:
        return options
    prepared = []
    for mount in mounts:
        if mount["type"] == "bind":
            mount = _allowed_bind(user, team, mount)
        if mount["type"] == "volume":
            volume = _volume_for_mount(team, image.host, mount["source"])
            mount = {**mount, "source": volume.name, "name": volume.engine_name}
            if volume.anonymous:
                mount["anonymous"] = True
        prepared.append(mount)
    covered = {mount["target"] for mount in prepared}
    for target in declared:
        if isinstance(target, str) and target not in covered:
            volume = _volume_for_mount(team, image.host, "")
            prepared.append(
                {
                    "type": "volume",
                    "source": volume.name,
                    "target": target,
                    "read_only": False,
                    "name": volume.engine_name,
                    "anonymous": True,
                }
            )
    return {**options, "mounts": prepared}


def _allowed_bind(user, team, mount: dict) -> dict:
    """A bind mount the team's policy allows; outside a site admin's, the host resolves its
    source inside the allowed root (``within``), so a symlink placed there cannot lead out."""
    team_policy.check_bind_mount(team, user, mount["source"], field="mounts")
    if is_site_admin(user):
        return mount
    roots = team_policy.policy_of(team).bind_mount_roots or []
    matching = [root for root in roots if team_policy.is_under(mount["source"], root)]
    return {**mount, "within": max(matching, key=len)}


def _volume_for_mount(team, host: Host, name: str) -> Volume:
    if not name:
        name = secrets.token_hex(32)
        return Volume.objects.create(
            team=team, host=host, name=name, engine_name=name, anonymous=True
        )
    volume, _ = Volume.objects.get_or_create(
        team=team, host=host, name=name, defaults={"engine_name": engine_name(team, name)}
    )
    return volume


# ---- agent calls --------------------------------------------------------------------------


def _call(host: Host, task: str, args: list) -> Any:
    answer = call_host(host, task, args, settings.BERTH_CONTAINER_RPC_TIMEOUT)
    if not isinstance(answer, dict):
        raise AgentError(f"host {host.name} answered {task} without a volume report")
    return answer
