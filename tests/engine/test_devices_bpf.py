"""The cgroup v2 device allowlist (an eBPF program), tried on a cgroup of its own.

On a hybrid host the program is attached to a cgroup of the v2 hierarchy mounted
at /sys/fs/cgroup/unified; a forked child joins that cgroup and tries devices.
"""

import errno
import json
import os
from pathlib import Path

import pytest

from workers.engine import cgroups, devices_bpf

pytestmark = pytest.mark.usefixtures("needs_root")

UNIFIED = Path("/sys/fs/cgroup/unified")
CHAR, BLOCK = 0o20000, 0o60000


@pytest.fixture
def v2_cgroup():
    root = Path("/sys/fs/cgroup") if cgroups.version() == "v2" else UNIFIED
    if not (root / "cgroup.procs").exists():
        pytest.skip("no cgroup v2 hierarchy on this host")
    # Named as conftest's sweep expects (ends with our pid): removed if a crash leaves it.
    path = root / f"berth-test-devices-{os.getpid()}"
    path.mkdir(exist_ok=True)
    yield path
    path.rmdir()


def _outcome(action) -> str:
    try:
        action()
    except OSError as exc:
        return errno.errorcode[exc.errno]
    return "ok"


def _open(path: str, flags: int) -> None:
    os.close(os.open(path, flags))


def in_child(cgroup: Path, tmp_path: Path) -> dict[str, str]:
    """What a child inside `cgroup` may make and open, answered through a file."""
    results = tmp_path / "results.json"
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child ends with os._exit
        try:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            found = {}
            for name, kind, major, minor in (("kmsg", CHAR, 1, 11), ("loop", BLOCK, 7, 0),
                                              ("null", CHAR, 1, 3)):
                node = str(tmp_path / name)
                found[f"mknod {name}"] = _outcome(
                    lambda node=node, kind=kind, major=major, minor=minor:
                    os.mknod(node, kind | 0o600, os.makedev(major, minor)))
                found[f"read {name}"] = _outcome(lambda node=node: _open(node, os.O_RDONLY))
                found[f"write {name}"] = _outcome(lambda node=node: _open(node, os.O_WRONLY))
            for name in ("null", "zero", "urandom", "full"):
                found[f"/dev/{name}"] = _outcome(lambda name=name: _open(f"/dev/{name}", os.O_RDWR))
            results.write_text(json.dumps(found))
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return json.loads(results.read_text())


def test_the_default_rules_allow_only_the_standard_devices(v2_cgroup, tmp_path):
    devices_bpf.attach(v2_cgroup, cgroups.DEVICE_RULES)
    found = in_child(v2_cgroup, tmp_path)
    assert found["mknod kmsg"] == found["mknod loop"] == "ok"  # `m` for every node
    assert found["write kmsg"] == found["read loop"] == found["write loop"] == "EPERM"
    assert found["read null"] == found["write null"] == "ok"
    assert all(found[f"/dev/{name}"] == "ok" for name in ("null", "zero", "urandom", "full"))


def test_a_rule_gives_only_the_access_it_names(v2_cgroup, tmp_path):
    devices_bpf.attach(v2_cgroup, ["c 1:3 r", "c 1:* m"])
    found = in_child(v2_cgroup, tmp_path)
    assert found["read null"] == "ok" and found["write null"] == "EPERM"
    assert found["mknod kmsg"] == "ok" and found["read kmsg"] == "EPERM"
    assert found["mknod loop"] == "EPERM"  # no rule for block devices
    assert found["/dev/zero"] == "EPERM"


def test_without_a_program_the_same_child_opens_everything(v2_cgroup, tmp_path):
    """The checks above can fail: with no program, the child writes to kmsg."""
    found = in_child(v2_cgroup, tmp_path)
    assert found["write kmsg"] == "ok" and found["read null"] == "ok"
