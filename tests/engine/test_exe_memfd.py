"""CVE-2019-5736 class: a container must never reach the host's Python through
/proc/<pid>/exe. Shims and exec children are forks of the zygote, and a resumed
shim is berth-supervisor's exec of Python, so at their execve they are Python:
a `#!/proc/self/exe` script makes the kernel run that very binary inside the
container. Each of them must be a sealed memfd copy, never the host's file.

To let the kernel actually run the interpreter it picked, the container gets
read-only binds of the interpreter's loader, libraries and standard library
(busybox has no libc); a second process then looks at its /proc/<pid>/exe.
"""

import contextlib
import fcntl
import hashlib
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.engine.test_isolation import image_with
from workers.engine import sealed, zygote
from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.runtime import wait_for

pytestmark = pytest.mark.usefixtures("needs_root")

INTERPRETER = os.path.realpath(sys.executable)

PROBE = b"""#!/proc/self/exe
import os, sys, time
if sys.argv[1:] == ["fail-first"] and not os.path.exists("/tmp/failed-once"):
    open("/tmp/failed-once", "w").close()
    sys.exit(3)
print("probe-ready", flush=True)
time.sleep(120)
"""

# From a second process in the container, as an attacker would.
CHECK = ("for p in $(pidof exe-probe); do echo exe=$(readlink /proc/$p/exe); "
         "if echo x 2>/dev/null > /proc/$p/exe; then echo written; else echo write-denied; fi; "
         "done")


def _host_python_mounts() -> list[dict]:
    """Read-only binds of what the interpreter needs: its ELF loader and library
    directories (as the loader names them) and its prefix (libpython, stdlib)."""
    listing = subprocess.run(["ldd", INTERPRETER], check=True, capture_output=True,
                             text=True).stdout
    paths = [word for word in listing.split() if word.startswith("/")]
    targets = {os.path.dirname(path) for path in paths} | {sys.base_prefix}
    outermost = {t for t in targets
                 if not any(t != other and t.startswith(other + "/") for other in targets)}
    return [{"type": "bind", "source": os.path.realpath(target), "target": target,
             "read_only": True} for target in sorted(outermost)]


@pytest.fixture
def probe_image(store):
    return image_with(store, {"exe-probe": PROBE}, "exe-probe:1")


def spec(image: str, *args: str, **extra) -> dict:
    return {"image": image, "args": list(args), "mounts": _host_python_mounts(),
            "env": ["PATH=/bin", f"PYTHONHOME={sys.base_prefix}"], **extra}


def exec_output(runtime, *args: str) -> str:
    process = runtime.exec("c1", {"args": list(args)})
    try:
        out = read_until_end(process.stdout)
        process.wait()
        return out.decode()
    finally:
        process.close()


def read_until_end(fd: int, marker: bytes | None = None, timeout: float = 20) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while (marker is None or marker not in seen) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        if not chunk:
            break
        seen += chunk
    return seen


def assert_probe_runs_sealed_copy(runtime) -> None:
    before = _digest(INTERPRETER)
    output = exec_output(runtime, "sh", "-c", CHECK)
    links = [line[len("exe="):] for line in output.splitlines() if line.startswith("exe=")]
    assert len(links) == 1, output
    assert links[0].startswith("/memfd:") and links[0].endswith("(deleted)"), output
    assert INTERPRETER not in links[0]
    assert "write-denied" in output and "written" not in output
    assert _digest(INTERPRETER) == before


def test_probe_as_the_containers_command(runtime, probe_image):
    runtime.create("c1", spec(probe_image, "/exe-probe"))
    runtime.start("c1")
    assert wait_for(lambda: "probe-ready" in runtime.logs("c1"), 20), runtime.logs("c1")
    assert_probe_runs_sealed_copy(runtime)
    runtime.stop("c1", timeout=0)


def test_probe_through_exec(runtime, probe_image):
    runtime.create("c1", spec(probe_image, "sleep", "120"))
    runtime.start("c1")
    probe = runtime.exec("c1", {"args": ["/exe-probe"]})
    try:
        assert b"probe-ready" in read_until_end(probe.stdout, b"probe-ready")
        assert_probe_runs_sealed_copy(runtime)
    finally:
        probe.kill()
        probe.close()
    runtime.stop("c1", timeout=0)


def test_probe_after_a_restart_by_policy(runtime, probe_image):
    """The second run is started by the shim that berth-supervisor resumed."""
    runtime.create("c1", spec(probe_image, "/exe-probe", "fail-first", restart="on-failure:1"))
    runtime.start("c1")
    assert wait_for(lambda: runtime.state("c1")["restart_count"] == 1
                    and "probe-ready" in runtime.logs("c1"), 20), runtime.logs("c1")
    assert_probe_runs_sealed_copy(runtime)
    runtime.stop("c1", timeout=0)


def test_zygote_runs_from_the_sealed_copy_and_keeps_no_handle_on_it(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"]})
    runtime.start("c1")
    pid = int((runtime.engine_root / zygote.PIDFILE).read_text())
    assert os.readlink(f"/proc/{pid}/exe").startswith("/memfd:")
    handles = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    assert not [link for link in handles if link.startswith("/memfd:")]


def test_the_copy_is_the_interpreter_sealed_against_every_change():
    fd = sealed.interpreter_copy()
    try:
        wanted = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        assert fcntl.fcntl(fd, fcntl.F_GET_SEALS) & wanted == wanted
        assert Path(f"/proc/self/fd/{fd}").read_bytes() == Path(INTERPRETER).read_bytes()
        for change in (lambda: os.pwrite(fd, b"x", 0), lambda: os.ftruncate(fd, 0),
                       lambda: os.ftruncate(fd, 1 << 30)):
            with pytest.raises(PermissionError):
                change()
        with pytest.raises(PermissionError):
            os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_TRUNC)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
