"""Volume tasks the control plane sends to this host's queue (docs/agent-protocol.md, "Volumes").

All are quick calls answered through the result backend. A refusal raises
`Conflict` (in use) or `NotFound`, names the control plane maps to 409 and 404.
"""

import logging

from berth.celery import app
from workers.engine.volumes import NoSuchVolume, VolumeError, VolumeInUse

from .node import node
from .reporter import send

log = logging.getLogger("berth.agent")


class Conflict(Exception):
    """The volume is in use, or the request does not fit it now."""


class NotFound(Exception):
    """No such volume on this host."""


@app.task(name="agent.volume_create")
def volume_create(name: str, labels: dict | None = None) -> dict:
    with _refusals():
        return node().runtime.volumes.create(name, labels or {})


@app.task(name="agent.volume_inspect")
def volume_inspect(name: str) -> dict:
    with _refusals():
        return node().runtime.volumes.inspect(name)


@app.task(name="agent.volume_list")
def volume_list() -> list[dict]:
    return node().runtime.volumes.list(size=True)


@app.task(name="agent.volume_remove")
def volume_remove(name: str, force: bool = False) -> dict:
    with _refusals():
        reclaimed = node().runtime.volumes.remove(name, force)
    return {"removed": [name], "reclaimed": reclaimed}


@app.task(name="agent.volume_prune")
def volume_prune(all: bool = False, labels: dict | None = None) -> dict:  # noqa: A002
    return node().runtime.volumes.prune(all, labels or {})


def anonymous_volumes(container_id: str) -> list[str]:
    """The anonymous volumes a container on this host mounts (what `rm -v` removes)."""
    try:
        mounts = node().runtime.config(container_id).get("mounts") or []
    except Exception:  # noqa: BLE001 - no container, no volumes
        return []
    return [mount["volume"] for mount in mounts if mount.get("anonymous")]


def report_removed(names: list[str]) -> None:
    """Tell the control plane which of these volumes are gone from this host."""
    volumes = node().runtime.volumes
    gone = [name for name in names if not volumes.exists(name)]
    if gone:
        send("volumes.removed", node().config.host_name, gone)


class _refusals:
    """The engine's refusals as the exceptions the control plane maps."""

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, traceback):
        if isinstance(exc, VolumeInUse):
            raise Conflict(str(exc)) from None
        if isinstance(exc, NoSuchVolume):
            raise NotFound(str(exc)) from None
        if isinstance(exc, VolumeError):
            raise Conflict(str(exc)) from None
        return False
