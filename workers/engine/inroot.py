"""A container's root directory as an fd, and paths resolved inside it.

Everything a user names by path in a container (`docker cp`, stat, export)
goes through `resolve`: it walks one component at a time from the root fd
with O_PATH|O_NOFOLLOW, reads each symlink itself and follows it lexically,
with `..` and absolute targets stopping at the container's root. The kernel
never follows a link for us, so a symlink the container places, or swaps in
while we walk, can only lead somewhere else inside the same root.

The root of a running container is its init's `/proc/<pid>/root`, which
also sees its mounts (volumes); the pid is pinned with a pidfd and checked
to be the child of the container's shim. A stopped container has no mount:
`with_root` mounts its overlay in a forked child with a mount namespace of
its own, which the host never sees and which ends with the child.
"""

import contextlib
import json
import os
import select
import stat
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import linux as L
from . import state as engine_state

MAX_LINKS = 40  # as the kernel's MAXSYMLINKS
PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


class CopyError(Exception):
    """A request that cannot work as sent (HTTP 400)."""

    code = "invalid"


class NotFound(CopyError):
    code = "not_found"


class NotRunning(CopyError):
    code = "conflict"


@dataclass
class Resolved:
    """An O_PATH fd of what `path` names (a symlink itself unless followed), the
    directory holding it, its name there, and its absolute path in the container."""

    fd: int
    parent_fd: int
    name: str
    path: str

    def close(self) -> None:
        for fd in {self.fd, self.parent_fd}:
            with contextlib.suppress(OSError):
                os.close(fd)


def resolve(root_fd: int, path: str, follow: bool = True) -> Resolved:
    """Resolve `path` inside the root; `follow` decides for a final symlink only."""
    stack: list[tuple[int, str]] = [(os.dup(root_fd), "")]
    pending = [part for part in path.split("/") if part]
    pending.reverse()  # a stack: the next component is at the end
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop()[0])
                continue
            link = _step(stack, part, follow or bool(pending), path)
            if link is None:
                continue
            links += 1
            if links > MAX_LINKS:
                raise CopyError(f"{path}: too many levels of symbolic links")
            if link.startswith("/"):
                while len(stack) > 1:
                    os.close(stack.pop()[0])
            pending.extend(reversed([p for p in link.split("/") if p]))
        return _resolved(stack)
    except BaseException:
        for fd, _ in stack:
            os.close(fd)
        raise


def _step(stack: list[tuple[int, str]], part: str, follow: bool, path: str) -> str | None:
    """Open `part` below the top of the stack and push it; a symlink to follow is
    returned (its target) instead."""
    parent = stack[-1][0]
    if not stat.S_ISDIR(os.fstat(parent).st_mode):
        raise NotFound(f"{path}: not a directory")
    try:
        fd = os.open(part, PATH_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        raise NotFound(f"no such file or directory: {path}") from None
    if follow and stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        try:
            return os.readlink(part, dir_fd=parent)
        except OSError:  # swapped meanwhile: look the name up again
            return part
    stack.append((fd, part))
    return None


def _resolved(stack: list[tuple[int, str]]) -> Resolved:
    path = "/" + "/".join(name for _, name in stack[1:])
    fd, name = stack[-1]
    parent_fd = stack[-2][0] if len(stack) > 1 else fd
    for other, _ in stack[:-2]:
        os.close(other)
    return Resolved(fd=fd, parent_fd=parent_fd, name=name, path=path)


def reopen(path_fd: int, flags: int) -> int:
    """A real fd of the very inode an O_PATH fd holds (no path is looked up again)."""
    return os.open(f"/proc/self/fd/{path_fd}", flags | os.O_CLOEXEC)


# the root of a running container
def running_root(container_dir: Path) -> int | None:
    """An O_PATH fd of the running container's root, or None when it has no live init."""
    current = engine_state.read_state(container_dir)
    pid, shim_pid = current.get("pid"), current.get("shim_pid")
    if current.get("state") not in (engine_state.RUNNING, engine_state.PAUSED) or not pid:
        return None
    pidfd = L.pidfd_open(pid)
    if pidfd is None:
        return None
    try:
        if not _is_child_of_shim(pid, shim_pid, current.get("shim_start")):
            return None
        try:
            root_fd = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None  # exiting: a zombie has no root
        # Still alive after the open: the pid was never reused in between, so the
        # root is this container's.
        if select.select([pidfd], [], [], 0)[0]:
            os.close(root_fd)
            return None
        return root_fd
    finally:
        os.close(pidfd)


def is_running(container_dir: Path) -> bool:
    root_fd = running_root(container_dir)
    if root_fd is None:
        return False
    os.close(root_fd)
    return True


def _is_child_of_shim(pid: int, shim_pid: int | None, shim_start: int | None) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ppid = next((int(line.split()[1]) for line in status.splitlines()
                 if line.startswith("PPid:")), None)
    return (shim_pid is not None and ppid == shim_pid
            and engine_state.process_start_time(shim_pid) == shim_start)


# the root of a stopped container
def with_root(container_dir: Path, work, writable: bool = False):
    """`work(root_fd)` with the container's root filesystem; returns its JSON-able result.

    Running: in this process, through `/proc/<pid>/root`. Stopped (created,
    exited): in a forked child that mounts the overlay privately: read-only with
    the writable layer as the top lower layer, or (`writable`) with it as the
    upper layer. Files `work` writes to are shared with the child, so they carry
    its output. A live container without a usable root (restarting, or its init
    exiting) is refused: a shim may mount the same upper layer at any moment,
    and overlayfs must never have two mounts writing one upper layer.
    """
    root_fd = running_root(container_dir)
    if root_fd is not None:
        try:
            return work(root_fd)
        finally:
            os.close(root_fd)
    current = engine_state.read_state(container_dir).get("state")
    if current in engine_state.LIVE:
        raise NotRunning(f"container is {current}: try again once it runs or has stopped")
    config = json.loads((container_dir / "config.json").read_text())
    return _in_child(lambda: _work_on_mount(config, container_dir, work, writable))


def _work_on_mount(config: dict, container_dir: Path, work, writable: bool):
    L.unshare(L.CLONE_NEWNS)
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    target = tempfile.mkdtemp(prefix=".copy-", dir=container_dir)
    try:
        if writable:
            options = (f"lowerdir={':'.join(config['lowerdirs'])},"
                       f"upperdir={config['upperdir']},workdir={config['workdir']}")
        else:
            options = f"lowerdir={':'.join([config['upperdir'], *config['lowerdirs']])}"
        L.mount("overlay", target, "overlay", L.MS_NODEV | L.MS_NOSUID, options)
        root_fd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return work(root_fd)
        finally:
            os.close(root_fd)
            L.umount(target, L.MNT_DETACH)
    finally:
        os.rmdir(target)


def _in_child(action):
    """Run `action` in a forked child; its result or its CopyError comes back by pipe."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends with os._exit
        os.close(read_end)
        code = 0
        try:
            answer = {"ok": action()}
        except CopyError as exc:
            answer = {"error": str(exc), "kind": type(exc).__name__}
        except BaseException as exc:  # noqa: BLE001 - anything must reach the parent
            answer = {"error": f"{type(exc).__name__}: {exc}", "kind": "",
                      "trace": traceback.format_exc()}
            code = 1
        try:
            with os.fdopen(write_end, "w") as pipe:
                json.dump(answer, pipe)
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    answer = json.loads(text) if text else {"error": "the copy helper died", "kind": ""}
    if "ok" in answer:
        return answer["ok"]
    kinds = {cls.__name__: cls for cls in (CopyError, NotFound, NotRunning)}
    raise kinds.get(answer["kind"], OSError)(answer["error"])
