"""Builds the container's root filesystem inside its new mount namespace.

Runs in the container's first process, after unshare and before exec, in
runc's order: make the host's mounts private to us, mount the overlay, the
kernel filesystems and /dev inside it, mask what Docker masks, then
pivot_root and detach the old root so nothing of the host stays reachable.
"""

import os
import shutil
import stat
import tempfile
from pathlib import Path

from . import linux as L
from . import mounts, userns

NOSUID_NODEV_NOEXEC = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
           "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
             "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2", "core": "/proc/kcore"}
MASKED_PATHS = ("proc/acpi", "proc/asound", "proc/interrupts", "proc/kcore", "proc/keys",
                "proc/latency_stats", "proc/sched_debug", "proc/scsi", "proc/timer_list",
                "proc/timer_stats", "sys/devices/virtual/powercap", "sys/firmware")
READONLY_PATHS = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")
ETC_FILES = ("hosts", "hostname", "resolv.conf")


class RootfsError(Exception):
    pass


def inside(root: Path, relative: str) -> Path:
    """`root/relative`, refusing any symlink on the way: image content must not
    redirect a mount to the host (images whose /proc or /etc/hosts are symlinks)."""
    path = root
    for part in Path(relative).parts:
        path = path / part
        if path.is_symlink():
            raise RootfsError(f"/{relative} is a symlink in the image; refusing to mount over it")
    return path


def ensure_dir(path: Path, mode: int = 0o755) -> None:
    if not path.is_dir():
        path.mkdir(mode=mode, parents=True)


def ensure_file(path: Path) -> None:
    if not path.exists():
        ensure_dir(path.parent)
        path.touch(mode=0o644)


def build(config: dict, container_dir: Path, premade: dict | None = None) -> None:
    """`premade`: in a user namespace, detached mounts the shim made as host root
    (userns.py): "root", the overlay, and "sys", a sysfs (or None: mount one)."""
    rootfs = Path(config["rootfs"])
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)
    if premade:
        userns.attach(premade["root"], str(rootfs))
    else:
        lower = ":".join(config["lowerdirs"])
        L.mount("overlay", str(rootfs), "overlay", 0,
                f"lowerdir={lower},upperdir={config['upperdir']},workdir={config['workdir']}")
    _mount_proc_sys(rootfs, premade.get("sys") if premade else None)
    _mount_dev(rootfs, bind_devices=bool(premade))
    _bind_etc(rootfs, container_dir)
    _mount_tmpfs(rootfs, config.get("tmpfs") or {})
    mounts.attach_all(rootfs, config.get("mounts") or [])
    _write_sysctls(rootfs, config.get("sysctls") or {})
    _mask(rootfs)
    _pivot(rootfs)
    if config.get("read_only"):
        L.mount(None, "/", None, L.MS_REMOUNT | L.MS_BIND | L.MS_RDONLY)


def make_init_layer(path: Path) -> Path:
    """Docker's init layer: real directories and files where the runtime mounts, stacked
    above the image so an image whose /proc, /sys, /dev or /etc/hosts is a symlink
    cannot redirect those mounts."""
    if path.is_dir():
        return path
    tmp = Path(tempfile.mkdtemp(prefix=".init-", dir=path.parent))
    for directory, mode in (("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("etc", 0o755)):
        (tmp / directory).mkdir(mode=mode)
    for name in ETC_FILES:
        (tmp / "etc" / name).touch(mode=0o644)
    os.chmod(tmp, 0o755)
    try:
        tmp.rename(path)
    except OSError:  # a concurrent create made it first
        shutil.rmtree(tmp, ignore_errors=True)
        if not path.is_dir():
            raise
    return path


def _mount_tmpfs(rootfs: Path, mounts: dict[str, str]) -> None:
    for target, options in sorted(mounts.items()):
        path = inside(rootfs, target.lstrip("/"))
        ensure_dir(path)
        L.mount("tmpfs", str(path), "tmpfs", NOSUID_NODEV_NOEXEC, options or None)


def _write_sysctls(rootfs: Path, sysctls: dict[str, str]) -> None:
    # Written through the container's own /proc, before /proc/sys turns read-only.
    for name, value in sorted(sysctls.items()):
        (rootfs / "proc" / "sys" / name.replace(".", "/")).write_text(str(value))


def _mount_proc_sys(rootfs: Path, sysfs_fd: int | None = None) -> None:
    proc = inside(rootfs, "proc")
    ensure_dir(proc, 0o555)
    L.mount("proc", str(proc), "proc", NOSUID_NODEV_NOEXEC)
    sys_dir = inside(rootfs, "sys")
    ensure_dir(sys_dir, 0o555)
    if sysfs_fd is not None:
        userns.attach(sysfs_fd, str(sys_dir))
    else:
        L.mount("sysfs", str(sys_dir), "sysfs", NOSUID_NODEV_NOEXEC | L.MS_RDONLY)


def _mount_dev(rootfs: Path, bind_devices: bool = False) -> None:
    dev = inside(rootfs, "dev")
    ensure_dir(dev)
    L.mount("tmpfs", str(dev), "tmpfs", L.MS_NOSUID | L.MS_STRICTATIME, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        node = dev / name
        if bind_devices:
            userns.bind_device(name, node)
            continue
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(node, 0o666)
    for name, target in DEV_LINKS.items():
        os.symlink(target, dev / name)
    (dev / "pts").mkdir()
    L.mount("devpts", str(dev / "pts"), "devpts", L.MS_NOSUID | L.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5")
    (dev / "shm").mkdir(mode=0o1777)
    L.mount("shm", str(dev / "shm"), "tmpfs", NOSUID_NODEV_NOEXEC, "mode=1777,size=65536k")
    (dev / "mqueue").mkdir()
    L.mount("mqueue", str(dev / "mqueue"), "mqueue", NOSUID_NODEV_NOEXEC)


def _bind_etc(rootfs: Path, container_dir: Path) -> None:
    for name in ETC_FILES:
        target = inside(rootfs, f"etc/{name}")
        ensure_file(target)
        L.mount(str(container_dir / name), str(target), None, L.MS_BIND)


def _mask(rootfs: Path) -> None:
    for relative in MASKED_PATHS:
        path = rootfs / relative
        if path.is_dir():
            L.mount("tmpfs", str(path), "tmpfs", L.MS_RDONLY, "nr_blocks=1,nr_inodes=1")
        elif path.exists():
            L.mount(str(rootfs / "dev/null"), str(path), None, L.MS_BIND)
    for relative in READONLY_PATHS:
        path = rootfs / relative
        if path.exists():
            L.mount(str(path), str(path), None, L.MS_BIND | L.MS_REC)
            L.mount(str(path), str(path), None,
                    L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | NOSUID_NODEV_NOEXEC)


def _pivot(rootfs: Path) -> None:
    # pivot_root(".", ".") stacks the old root under the new one; detaching it
    # then leaves no path back to the host's filesystem.
    os.chdir(rootfs)
    L.pivot_root(".", ".")
    L.umount(".", L.MNT_DETACH)
    os.chdir("/")
