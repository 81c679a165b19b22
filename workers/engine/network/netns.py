"""Persistent network namespaces: an nsfs file bind-mounted on a path, so the
namespace outlives every process in it (a shim restarting its container)."""

import contextlib
import errno
import os
import threading
from pathlib import Path

from .. import linux as L

THREAD_NETNS = "/proc/thread-self/ns/net"


def in_thread(function, *args):
    """Run `function` on a thread of its own and return its result.

    setns and unshare of a network namespace change only the calling thread,
    and that thread ends here, so the agent's own threads never move.
    """
    outcome: dict = {}

    def body():
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=body, name="netns")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def is_mounted(path: Path) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def create(path: Path, setup=None) -> None:
    """A new network namespace pinned at `path`; `setup()` runs inside it."""
    if is_mounted(path):
        return
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.touch(mode=0o444)

    def body():
        L.unshare(L.CLONE_NEWNET)
        L.mount(THREAD_NETNS, str(path), None, L.MS_BIND)
        if setup is not None:
            setup()

    try:
        in_thread(body)
    except BaseException:
        remove(path)
        raise


def run_in(path: Path, function, *args):
    """`function(*args)` on a thread inside the namespace at `path`."""
    def body():
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            L.setns(fd, L.CLONE_NEWNET)
        finally:
            os.close(fd)
        return function(*args)

    return in_thread(body)


def remove(path: Path) -> None:
    """Unpin and delete; a no-op for a path already gone."""
    while is_mounted(path):
        try:
            L.umount(str(path), L.MNT_DETACH)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ENOENT):
                raise
            break
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
