"""A live container whose root cannot be reached (restarting) is refused, never mounted
a second time: two overlay mounts writing one upper layer corrupt it."""

import io
import tarfile
import tempfile
import time

import pytest

from workers.engine import fscopy, inroot
from workers.engine.bootstrap import BUSYBOX_REFERENCE

pytestmark = pytest.mark.usefixtures("needs_root")


def one_file_tar() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        info = tarfile.TarInfo("planted")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"x\n"))
    return out.getvalue()


def wait_restarting(runtime, name: str, restarts: int, timeout: float = 30) -> None:
    """Until the shim waits out a back-off long enough to act in (after `restarts` runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = runtime.state(name)
        if state["state"] == "restarting" and state["restart_count"] >= restarts:
            return
        time.sleep(0.02)
    raise AssertionError(f"{name} never waited in restarting: {runtime.state(name)}")


def test_copies_on_a_restarting_container_are_refused(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", "exit 1"],
                          "restart": "always"})
    runtime.start("c1")
    container = runtime.existing("c1")
    wait_restarting(runtime, "c1", 5)  # the next back-off is 3.2 s
    with tempfile.TemporaryFile() as spool:
        spool.write(one_file_tar())
        spool.seek(0)
        with pytest.raises(inroot.NotRunning, match="restarting"):
            fscopy.copy_in(container, "/tmp", spool)
    with tempfile.TemporaryFile() as out, pytest.raises(inroot.NotRunning, match="restarting"):
        fscopy.copy_out(container, "/etc/passwd", out)
    with pytest.raises(inroot.NotRunning):
        fscopy.stat_path(container, "/etc")
    assert inroot.NotRunning.code == "conflict"  # the agent's 409
    with open("/proc/self/mounts") as mounts:
        assert str(container) not in mounts.read()
    runtime.stop("c1", timeout=1)
    # Stopped again, the writable layer takes copies as before, and nothing was planted.
    assert runtime.state("c1")["state"] == "exited"
    with pytest.raises(fscopy.NotFound):
        fscopy.stat_path(container, "/tmp/planted")
