"""Container files on this host: copy in and out, path stat, export, diff, commit, top
(docs/agent-protocol.md, "Container files").

Every task is an RPC whose answer is `{"ok": true, ...}` or `{"ok": false,
"code": "invalid" | "not_found" | "conflict", "error": "..."}`, so the control
plane can tell a bad request from a missing path or a container in the
wrong state. Archives move through transfers: a copy out or an export is
PUT to `target`, a copy in is read from `source`.
"""

import contextlib
import logging
import shutil
import tempfile
import urllib.error

from berth.celery import app
from workers.engine import changes, commit, fscopy, procs
from workers.engine import state as engine_state
from workers.engine.runtime import RuntimeError_

from . import images
from .node import node

log = logging.getLogger("berth.agent")
CHUNK = 1 << 20
REFUSALS = (fscopy.CopyError, changes.ChangesError, procs.TopError, RuntimeError_)


def _answer(work) -> dict:
    """`work()`'s fields with ok=True, or the refusal in the protocol's shape."""
    try:
        return {"ok": True, **work()}
    except REFUSALS as exc:
        code = getattr(exc, "code", "conflict")
        return {"ok": False, "code": code, "error": str(exc)}
    except RecursionError:
        return {"ok": False, "code": "conflict", "error": "the directory tree is too deep"}
    except (OSError, urllib.error.URLError) as exc:
        log.warning("container file task failed: %s", exc)
        return {"ok": False, "code": "error", "error": str(exc)}


@contextlib.contextmanager
def _exclusive(container_id: str):
    """Whole-filesystem work waits for, and holds off, starts, stops and removes."""
    with node().container_lock(container_id):
        yield node().runtime.existing(container_id)


@app.task(name="agent.container_path_stat")
def container_path_stat(container_id: str, path: str) -> dict:
    def work() -> dict:
        container_dir = node().runtime.existing(container_id)
        return {"stat": fscopy.stat_path(container_dir, path)}
    return _answer(work)


@app.task(name="agent.container_archive_get")
def container_archive_get(container_id: str, path: str, target: dict) -> dict:
    """Copy `path` out as a tar, delivered to the transfer `target`; answers its stat."""
    def work() -> dict:
        container_dir = node().runtime.existing(container_id)
        with tempfile.TemporaryFile(dir=node().runtime.root) as spool:
            path_stat = fscopy.copy_out(container_dir, path, spool)
            spool.seek(0, 2)
            images.deliver_transfer(target, spool)
        return {"stat": path_stat}
    return _answer(work)


@app.task(name="agent.container_archive_put")
def container_archive_put(container_id: str, path: str, source: dict,
                          no_overwrite_dir_non_dir: bool = False) -> dict:
    """Extract the tar at the transfer `source` into the directory `path`."""
    def work() -> dict:
        with tempfile.TemporaryFile(dir=node().runtime.root) as spool:
            with images.open_transfer(source) as stream:
                shutil.copyfileobj(stream, spool, CHUNK)
            spool.seek(0)
            with _exclusive(container_id) as container_dir:
                read_only = bool(node().runtime.config(container_id).get("read_only"))
                fscopy.copy_in(container_dir, path, spool,
                               no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                               read_only=read_only)
        return {}
    return _answer(work)


@app.task(name="agent.container_export")
def container_export(container_id: str, target: dict) -> dict:
    def work() -> dict:
        with tempfile.TemporaryFile(dir=node().runtime.root) as spool:
            with _exclusive(container_id) as container_dir:
                fscopy.export(container_dir, spool)
            spool.seek(0, 2)
            images.deliver_transfer(target, spool)
        return {}
    return _answer(work)


@app.task(name="agent.container_changes")
def container_changes(container_id: str) -> dict:
    return _answer(lambda: {"changes": changes.changes(node().runtime.config(container_id))})


@app.task(name="agent.container_top")
def container_top(container_id: str, ps_args: str = "") -> dict:
    def work() -> dict:
        current = node().runtime.state(container_id)
        if current["state"] not in (engine_state.RUNNING, engine_state.PAUSED):
            raise RuntimeError_(f"container {container_id} is not running")
        return {"top": procs.top(container_id, ps_args)}
    return _answer(work)


@app.task(name="agent.container_commit")
def container_commit(container_id: str, reference: str = "", config_changes: dict | None = None,
                     author: str = "", comment: str = "", pause: bool = True) -> dict:
    """A new image from the container's writable layer; answers it as an image report."""
    agent = node()

    def work() -> dict:
        with _exclusive(container_id) as container_dir, \
                _paused(agent.runtime, container_id, pause):
            record = commit.commit(agent.store, container_dir, reference or None,
                                   config_changes or {}, author, comment)
        images.sync(agent)
        return {"images": [record.as_report()], "image_id": record.image_id}
    return _answer(work)


@contextlib.contextmanager
def _paused(runtime, container_id: str, wanted: bool):
    """Freeze a running container while its layer is read, as `docker commit` does."""
    frozen = wanted and runtime.state(container_id)["state"] == engine_state.RUNNING
    if frozen:
        runtime.pause(container_id)
    try:
        yield
    finally:
        if frozen:
            with contextlib.suppress(RuntimeError_):
                runtime.unpause(container_id)
