"""Per-container cgroups: limits, live updates, stats, freezing and OOM detection.

One interface over both layouts. On cgroup v2 a container gets one directory
under /sys/fs/cgroup/berth/; on v1 (and on hybrid hosts, whose controllers are
all bound to v1 hierarchies) it gets one directory per controller. Devices
are confined on both: v1 with the devices controller, v2 with an eBPF program
(devices_bpf.py).
"""

import contextlib
import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path

from . import devices_bpf

ROOT = Path("/sys/fs/cgroup")
# Test sessions running side by side each take a parent of their own.
PARENT = os.environ.get("BERTH_CGROUP_PARENT", "berth")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices")
# The device allowlist: deny everything, then allow runc's default list (runc
# libcontainer/specconv/spec_linux.go AllowedDevices, which Docker's rules end up as;
# /work/shared/notes/runtime-and-images.md 1.5). Any node may be created (`m`), as
# under Docker, but only these can be read or written: a node the container makes
# for the host's disk or kmsg opens with EPERM.
DEVICE_RULES = (
    "c *:* m", "b *:* m",
    "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",  # null zero full
    "c 1:8 rwm", "c 1:9 rwm",  # random urandom
    "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm",  # tty console ptmx
    "c 136:* rwm",  # pts
    "c 10:200 rwm",  # tun
)
UNLIMITED_V1 = -1


class CgroupError(Exception):
    pass


@dataclass(frozen=True)
class Limits:
    memory: int | None = None  # bytes
    memory_swap: int | None = None  # memory + swap, bytes; -1 = unlimited swap
    cpu_quota: int | None = None  # microseconds per period
    cpu_period: int = 100_000
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    pids: int | None = None

    @classmethod
    def from_dict(cls, data: dict | None) -> "Limits":
        data = data or {}
        known = {key: data[key] for key in cls.__dataclass_fields__ if data.get(key) is not None}
        return cls(**known)


def version() -> str:
    if (ROOT / "cgroup.controllers").exists():
        return "v2"
    return "v1"


def for_container(container_id: str) -> "Cgroup":
    devices_confined()  # read on the host, before a container's pivot_root hides /sys/fs/cgroup
    return CgroupV2(container_id) if version() == "v2" else CgroupV1(container_id)


@functools.cache
def devices_confined() -> bool:
    """Whether containers get the device allowlist: the v1 devices controller, or on v2
    an eBPF program this kernel accepts. Without it, the container loses CAP_MKNOD
    instead (shim.confine)."""
    if version() == "v1":
        return (ROOT / "devices").is_dir()
    try:
        os.close(devices_bpf.load(DEVICE_RULES))
    except devices_bpf.DeviceFilterError:
        return False
    return True


def _write(path: Path, value) -> None:
    try:
        path.write_text(str(value))
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from None


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _keyed(text: str) -> dict[str, int]:
    pairs = (line.split() for line in text.splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and pair[1].isdecimal()}


class Cgroup:
    def __init__(self, container_id: str):
        self.container_id = container_id

    def create(self, limits: Limits) -> None:
        raise NotImplementedError

    def remove(self, attempts: int = 100) -> None:
        """Remove the directories once empty; retried briefly because the processes of a
        dead pid namespace leave their cgroup a little after its init has been reaped."""
        for path in self.paths():
            for _ in range(attempts):
                try:
                    if path.exists():
                        path.rmdir()
                    break
                except OSError:
                    time.sleep(0.01)

    def paths(self) -> list[Path]:
        raise NotImplementedError

    def join_path(self) -> list[Path]:
        """The cgroup.procs files a process writes itself into."""
        return [path / "cgroup.procs" for path in self.paths()]

    def join(self, pid: int = 0) -> None:
        for procs in self.join_path():
            _write(procs, pid)


class CgroupV1(Cgroup):
    def paths(self) -> list[Path]:
        return [ROOT / name / PARENT / self.container_id for name in V1_CONTROLLERS
                if (ROOT / name).is_dir()]

    def _dir(self, controller: str) -> Path:
        return ROOT / controller / PARENT / self.container_id

    def create(self, limits: Limits) -> None:
        stale = False
        for path in self.paths():
            try:
                path.mkdir()
            except FileNotFoundError:  # the first container under this controller
                path.parent.mkdir(exist_ok=True)
                if path.parent.parent.name == "cpuset":
                    _inherit_cpuset(path.parent)
                path.mkdir()
            except FileExistsError:
                stale = True
            if path.parent.parent.name == "cpuset":
                _inherit_cpuset(path)
        if stale:
            # Left by a crashed run, and maybe frozen: a process joining it would stop.
            self.freeze(False)
        self._confine_devices()
        self.update(limits)

    def _confine_devices(self) -> None:
        devices = self._dir("devices")
        if not devices.is_dir():
            return
        _write(devices / "devices.deny", "a")
        for rule in DEVICE_RULES:
            _write(devices / "devices.allow", rule)

    def join_path(self) -> list[Path]:
        # A container started before Berth confined devices has no devices cgroup:
        # an exec into it joins the others, as its init did.
        return [path / "cgroup.procs" for path in self.paths()
                if path.parent.parent.name != "devices" or path.is_dir()]

    def update(self, limits: Limits) -> None:
        memory = self._dir("memory")
        if limits.memory is not None:
            # memsw must never be below memory: raise it first when growing.
            swap = limits.memory_swap if limits.memory_swap is not None else limits.memory * 2
            swap = UNLIMITED_V1 if swap == -1 else swap
            if (memory / "memory.memsw.limit_in_bytes").exists():
                _write(memory / "memory.memsw.limit_in_bytes", UNLIMITED_V1)
            _write(memory / "memory.limit_in_bytes", limits.memory)
            if (memory / "memory.memsw.limit_in_bytes").exists():
                _write(memory / "memory.memsw.limit_in_bytes", swap)
        cpu = self._dir("cpu")
        if limits.cpu_quota is not None:
            _write(cpu / "cpu.cfs_period_us", limits.cpu_period)
            _write(cpu / "cpu.cfs_quota_us", limits.cpu_quota if limits.cpu_quota > 0 else -1)
        if limits.cpu_shares is not None:
            _write(cpu / "cpu.shares", limits.cpu_shares)
        if limits.cpuset_cpus is not None:
            _write(self._dir("cpuset") / "cpuset.cpus", limits.cpuset_cpus)
        if limits.pids is not None:
            _write(self._dir("pids") / "pids.max", limits.pids if limits.pids > 0 else "max")

    def freeze(self, frozen: bool) -> None:
        state = self._dir("freezer") / "freezer.state"
        _write(state, "FROZEN" if frozen else "THAWED")
        wanted = "FROZEN" if frozen else "THAWED"
        for _ in range(500):
            if _read(state) == wanted:
                return
            time.sleep(0.002)
        raise CgroupError(f"freezer did not reach {wanted}")

    def oom_file(self) -> Path:
        return self._dir("memory") / "memory.oom_control"

    def oom_killed(self) -> bool:
        control = _keyed(_read(self.oom_file()))
        return control.get("oom_kill", 0) > 0

    def stats(self) -> dict:
        memory = self._dir("memory")
        memory_stat = _keyed(_read(memory / "memory.stat"))
        return {
            "cpu_usage_ns": int(_read(self._dir("cpuacct") / "cpuacct.usage") or 0),
            "memory_usage": int(_read(memory / "memory.usage_in_bytes") or 0),
            "memory_limit": int(_read(memory / "memory.limit_in_bytes") or 0),
            "memory_cache": memory_stat.get("total_cache", 0),
            "pids": int(_read(self._dir("pids") / "pids.current") or 0),
            "blkio": _blkio_v1(_read(self._dir("blkio") / "blkio.throttle.io_service_bytes")),
        }


class CgroupV2(Cgroup):
    CONTROLLERS = ("cpu", "cpuset", "memory", "pids", "io")

    def paths(self) -> list[Path]:
        return [ROOT / PARENT / self.container_id]

    @property
    def path(self) -> Path:
        return self.paths()[0]

    def create(self, limits: Limits) -> None:
        parent = ROOT / PARENT
        available = _read(ROOT / "cgroup.controllers").split()
        wanted = " ".join(f"+{c}" for c in self.CONTROLLERS if c in available)
        _write(ROOT / "cgroup.subtree_control", wanted)
        parent.mkdir(exist_ok=True)
        _write(parent / "cgroup.subtree_control", wanted)
        try:
            self.path.mkdir()
        except FileExistsError:
            self.freeze(False)  # left by a crashed run, and maybe frozen
        if devices_confined():
            try:
                devices_bpf.attach(self.path, DEVICE_RULES)
            except devices_bpf.DeviceFilterError as exc:
                raise CgroupError(f"cannot confine devices of {self.path}: {exc}") from None
        self.update(limits)

    def update(self, limits: Limits) -> None:
        if limits.memory is not None:
            _write(self.path / "memory.max", limits.memory)
            if limits.memory_swap is not None and (self.path / "memory.swap.max").exists():
                swap = "max" if limits.memory_swap == -1 else limits.memory_swap - limits.memory
                _write(self.path / "memory.swap.max", swap)
        if limits.cpu_quota is not None:
            quota = limits.cpu_quota if limits.cpu_quota > 0 else "max"
            _write(self.path / "cpu.max", f"{quota} {limits.cpu_period}")
        if limits.cpu_shares is not None:
            weight = 1 + ((limits.cpu_shares - 2) * 9999) // 262142
            _write(self.path / "cpu.weight", max(1, min(10000, weight)))
        if limits.cpuset_cpus is not None:
            _write(self.path / "cpuset.cpus", limits.cpuset_cpus)
        if limits.pids is not None:
            _write(self.path / "pids.max", limits.pids if limits.pids > 0 else "max")

    def freeze(self, frozen: bool) -> None:
        _write(self.path / "cgroup.freeze", 1 if frozen else 0)
        wanted = f"frozen {1 if frozen else 0}"
        for _ in range(500):
            if wanted in _read(self.path / "cgroup.events"):
                return
            time.sleep(0.002)
        raise CgroupError("cgroup did not freeze" if frozen else "cgroup did not thaw")

    def oom_file(self) -> Path:
        return self.path / "memory.events"

    def oom_killed(self) -> bool:
        return _keyed(_read(self.oom_file())).get("oom_kill", 0) > 0

    def stats(self) -> dict:
        cpu = _keyed(_read(self.path / "cpu.stat"))
        memory_stat = _keyed(_read(self.path / "memory.stat"))
        limit = _read(self.path / "memory.max")
        return {
            "cpu_usage_ns": cpu.get("usage_usec", 0) * 1000,
            "memory_usage": int(_read(self.path / "memory.current") or 0),
            "memory_limit": int(limit) if limit.isdecimal() else 0,
            "memory_cache": memory_stat.get("file", 0),
            "pids": int(_read(self.path / "pids.current") or 0),
            "blkio": _io_v2(_read(self.path / "io.stat")),
        }


def remove_empty_parents() -> None:
    """Remove Berth's parent cgroups once no container is left under them."""
    for parent in [ROOT / PARENT, *(ROOT / name / PARENT for name in V1_CONTROLLERS)]:
        with contextlib.suppress(OSError):  # absent, or containers still run under it
            parent.rmdir()


def _inherit_cpuset(path: Path) -> None:
    # A v1 cpuset starts empty and accepts no task until cpus and mems are set.
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(path / name):
            _write(path / name, _read(path.parent / name))


def _blkio_v1(text: str) -> dict:
    totals = {"read": 0, "write": 0}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].lower() in totals:
            totals[parts[1].lower()] += int(parts[2])
    return totals


def _io_v2(text: str) -> dict:
    totals = {"read": 0, "write": 0}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split()[1:] if "=" in item)
        totals["read"] += int(fields.get("rbytes", 0))
        totals["write"] += int(fields.get("wbytes", 0))
    return totals


def network_stats(pid: int) -> dict:
    """Bytes and packets per interface, read in the container's own network namespace."""
    interfaces = {}
    for line in _read(Path(f"/proc/{pid}/net/dev")).splitlines()[2:]:
        name, _, rest = line.partition(":")
        values = [int(v) for v in rest.split()]
        if name.strip() != "lo" and len(values) >= 16:
            interfaces[name.strip()] = {"rx_bytes": values[0], "rx_packets": values[1],
                                        "tx_bytes": values[8], "tx_packets": values[9]}
    return interfaces
