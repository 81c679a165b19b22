"""Containers in a user namespace of their own: Docker's userns-remap, per container.

The spec's `userns` maps the container's ids 0..size-1 onto host ids from
`uid`/`gid`: the container's root is an unprivileged host user, so whatever
escapes the container's mounts (a host-owned bind mount, /proc/sysrq-trigger,
the host's Python) meets the permissions of that user, with no capability.

The init is cloned into the new user namespace and its new pid namespace at
once (the pid namespace must belong to the user namespace for /proc to
mount). Until the shim releases it, it waits on a socket while the shim, still
root on the host, does what only the host's root may do:

- joins it to its cgroup and writes its uid_map and gid_map (setgroups stays
  allowed, as under Docker: the maps come from a privileged parent);
- makes the root filesystem: each image layer is an idmapped bind (host ids
  shifted into the container's range), and the overlay over them is made
  (`fsopen`) by host root, because image layers mark opaque directories with
  `trusted.` xattrs that only host root may read;
- when the container joins the runtime's network namespace (which belongs to
  the host's user namespace, so the container's root may not mount sysfs for
  it), a read-only sysfs of that namespace, made before the clone.

Both mounts reach the init as detached-mount fds it attaches in its own mount
namespace. The upper layer is *not* idmapped: what the container writes lands
on the host owned by the shifted ids (the container's root is `uid` on the
host), as with Docker's userns-remap, so nothing a container creates is owned
by the host's root. Its top directory is the container root's, so the
container can create files in /.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from . import linux as L
from . import mounts as M

DEFAULT_START = 100000  # `userns: true`: the range Docker's userns-remap commonly uses
DEFAULT_SIZE = 65536  # ids 0..65535 inside, nobody (65534) included
MAX_ID = 2**32 - 2  # (uid_t)-1 is never an id
SYS_FSOPEN, SYS_FSCONFIG, SYS_FSMOUNT = 430, 431, 432  # x86_64
FSOPEN_CLOEXEC = FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FD, FSCONFIG_CMD_CREATE = 5, 6
MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC = 0x2, 0x4, 0x8
MOUNT_ATTR_IDMAP = 0x00100000
READY, RELEASE = b"r", b"go"


class UsernsError(Exception):
    pass


def parse(value) -> dict | None:
    """The spec's `userns`: None/false (none), true (the default range), or
    {uid, gid, size}: host ids `uid`/`gid` onward become the container's 0 onward."""
    if value is None or value is False:
        return None
    if value is True:
        return {"uid": DEFAULT_START, "gid": DEFAULT_START, "size": DEFAULT_SIZE}
    if not isinstance(value, dict) or set(value) - {"uid", "gid", "size"}:
        raise UsernsError("userns must be true, false or {uid, gid, size}")
    remap = {"uid": value.get("uid", DEFAULT_START), "gid": value.get("gid", DEFAULT_START),
             "size": value.get("size", DEFAULT_SIZE)}
    for key, number in remap.items():
        if not isinstance(number, int) or isinstance(number, bool):
            raise UsernsError(f"userns {key} must be an integer")
    if remap["size"] < DEFAULT_SIZE:
        raise UsernsError(f"userns size must be at least {DEFAULT_SIZE} (ids up to nobody)")
    for key in ("uid", "gid"):
        # Host id 0 in the range would make the container's root (or a user) host root.
        if remap[key] < 1 or remap[key] + remap["size"] - 1 > MAX_ID:
            raise UsernsError(f"userns {key} range {remap[key]}+{remap['size']} is not "
                              f"within host ids 1..{MAX_ID}")
    return remap


# ---- the shim's side ----------------------------------------------------------------------


@dataclass
class Handoff:
    """What the shim and the waiting init share: a socket, and (with a joined network
    namespace) a detached read-only sysfs of that namespace."""

    channel: socket.socket
    sysfs_fd: int | None

    def close(self) -> None:
        self.channel.close()
        if self.sysfs_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.sysfs_fd)
            self.sysfs_fd = None


def clone_init(config: dict) -> tuple[int, Handoff]:
    """Clone the init into new user and pid namespaces: 0 in the init, its pid in the
    shim, which must then `release` it.

    A network namespace the runtime made belongs to the host's user namespace: the
    init can only be born into it (setns from inside is refused), so the shim steps
    into it around the clone, and makes the container's sysfs there.
    """
    shim_end, init_end = socket.socketpair()
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    sysfs_fd = pid = None
    try:
        if config.get("netns"):
            _setns_path(config["netns"], L.CLONE_NEWNET)
            sysfs_fd = _make_sysfs()
        pid = L.fork_into(L.CLONE_NEWUSER | L.CLONE_NEWPID)
    except BaseException:
        for fd in ([sysfs_fd] if sysfs_fd is not None else []):
            os.close(fd)
        shim_end.close()
        init_end.close()
        raise
    finally:
        if pid != 0:
            L.setns(home, L.CLONE_NEWNET)
        os.close(home)
    if pid == 0:
        shim_end.close()
        return 0, Handoff(init_end, sysfs_fd)
    init_end.close()
    return pid, Handoff(shim_end, sysfs_fd)


def release(pid: int, config: dict, cgroup, container_dir: Path, handoff: Handoff) -> None:
    """The shim's part, as host root: cgroup, id maps, the root filesystem; then the
    init may go on. Raises when the init cannot; the caller kills it."""
    remap = config["userns"]
    try:
        cgroup.join(pid)
        for name, key in (("uid_map", "uid"), ("gid_map", "gid")):
            Path(f"/proc/{pid}/{name}").write_text(f"0 {remap[key]} {remap['size']}\n")
        if any(mount["type"] == "volume" for mount in config.get("mounts") or []):
            raise UsernsError("volumes are not supported in a user namespace yet")
        _own(config, container_dir, remap)
        _write_net_sysctls(config)
        if handoff.channel.recv(1) != READY:
            raise UsernsError("the container's init ended before its namespaces were made")
        userns_fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            root_fd = _make_overlay(config, userns_fd)
        finally:
            os.close(userns_fd)
        # Opened through the init's root: the fd must be of its mount namespace.
        dir_fd = os.open(f"/proc/{pid}/root{container_dir}",
                         os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            socket.send_fds(handoff.channel, [RELEASE], [root_fd, dir_fd])
        finally:
            os.close(root_fd)
            os.close(dir_fd)
    finally:
        handoff.close()


def _own(config: dict, container_dir: Path, remap: dict) -> None:
    """What the container's root must own or reach on the host.

    The top of the upper layer is the overlay's root directory. The etc files are
    the container's to change. The container's directory lets the range's first
    group through (0710, nothing readable): the init builds the root as the
    namespace's root, reaching that directory through an fd the shim passes
    (`wait_for_release`), so the directories above it may stay 0700.
    """
    os.chown(config["upperdir"], remap["uid"], remap["gid"])
    for name in ("hosts", "hostname", "resolv.conf"):
        os.chown(container_dir / name, remap["uid"], remap["gid"])
    os.chown(container_dir, 0, remap["gid"])
    os.chmod(container_dir, 0o710)


def _make_overlay(config: dict, userns_fd: int) -> int:
    """A detached overlay mount: idmapped image layers under the container's upper."""
    layers: list[int] = []
    fs = None
    try:
        for directory in config["lowerdirs"]:
            layers.append(_idmapped(directory, userns_fd))
        for directory in (config["upperdir"], config["workdir"]):
            layers.append(os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
        fs = M._syscall(SYS_FSOPEN, b"overlay", ctypes.c_uint(FSOPEN_CLOEXEC),
                        what="fsopen overlay")
        keys = [b"lowerdir+"] * len(config["lowerdirs"]) + [b"upperdir", b"workdir"]
        for key, fd in zip(keys, layers, strict=True):
            _fsconfig(fs, FSCONFIG_SET_FD, key, fd)
        _fsconfig(fs, FSCONFIG_CMD_CREATE, None, 0)
        return M._syscall(SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(FSMOUNT_CLOEXEC),
                          ctypes.c_uint(0), what="fsmount overlay")
    finally:
        for fd in layers + ([fs] if fs is not None else []):
            os.close(fd)


def _idmapped(directory: str, userns_fd: int) -> int:
    """A detached bind of `directory` whose owners appear shifted by the namespace's maps."""
    source = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tree = M._syscall(M.SYS_OPEN_TREE, ctypes.c_int(source), b"",
                          ctypes.c_uint(M.OPEN_TREE_CLONE | os.O_CLOEXEC | M.AT_EMPTY_PATH),
                          what=f"open_tree {directory}")
    finally:
        os.close(source)
    try:
        _setattr(tree, MOUNT_ATTR_IDMAP, userns_fd, f"idmap {directory}")
    except BaseException:
        os.close(tree)
        raise
    return tree


def _write_net_sysctls(config: dict) -> None:
    """A joined network namespace's sysctls: only a holder of CAP_NET_ADMIN over its
    owner (the host's user namespace) may write them. /proc/sys shows the writer's
    network namespace, so the shim steps into the container's for this."""
    sysctls = {name: value for name, value in (config.get("sysctls") or {}).items()
               if name.startswith("net.")}
    if not sysctls or not config.get("netns"):
        return
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns_path(config["netns"], L.CLONE_NEWNET)
        try:
            for name, value in sorted(sysctls.items()):
                Path("/proc/sys", *name.split(".")).write_text(str(value))
        finally:
            L.setns(home, L.CLONE_NEWNET)
    finally:
        os.close(home)


def init_config(config: dict, premade: dict) -> dict:
    """The config as the init builds its root in the namespace: the container's
    directory reached through the fd the shim passed, and without the network
    sysctls of a joined namespace, which the shim wrote."""
    sysctls = config.get("sysctls") or {}
    if config.get("netns"):
        sysctls = {k: v for k, v in sysctls.items() if not k.startswith("net.")}
    return {**config, "rootfs": str(premade["dir"] / "rootfs"), "sysctls": sysctls}


def _make_sysfs() -> int:
    """A detached read-only sysfs of the current network namespace."""
    fs = M._syscall(SYS_FSOPEN, b"sysfs", ctypes.c_uint(FSOPEN_CLOEXEC), what="fsopen sysfs")
    try:
        _fsconfig(fs, FSCONFIG_CMD_CREATE, None, 0)
        flags = M.MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
        return M._syscall(SYS_FSMOUNT, ctypes.c_int(fs), ctypes.c_uint(FSMOUNT_CLOEXEC),
                          ctypes.c_uint(flags), what="fsmount sysfs")
    finally:
        os.close(fs)


def _fsconfig(fs: int, command: int, key: bytes | None, aux: int) -> None:
    M._syscall(SYS_FSCONFIG, ctypes.c_int(fs), ctypes.c_uint(command), key, None,
               ctypes.c_int(aux), what=f"fsconfig {(key or b'create').decode()}")


def _setattr(tree: int, attr_set: int, userns_fd: int, what: str) -> None:
    attr = M._MountAttr(attr_set, 0, 0, userns_fd)
    M._syscall(M.SYS_MOUNT_SETATTR, ctypes.c_int(tree), b"", ctypes.c_uint(M.AT_EMPTY_PATH),
               ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), what=what)


def _setns_path(path: str, nstype: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        L.setns(fd, nstype)
    finally:
        os.close(fd)


# ---- the init's side ----------------------------------------------------------------------


def wait_for_release(handoff: Handoff) -> dict:
    """Block until the shim has set the namespace up, then become its root.

    Returns rootfs.build's `premade`: "root", the overlay's detached mount fd;
    "sys", a sysfs one or None; "dir", the container's directory as a path through
    an fd (/proc/self/fd/N: no walk through the host's directories above it,
    which the namespace's root may not enter).
    """
    handoff.channel.sendall(READY)
    message, fds, _, _ = socket.recv_fds(handoff.channel, 16, 2)
    handoff.channel.close()
    if message != RELEASE or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        raise UsernsError("the shim could not set the user namespace up")
    # Ids taken before the maps existed are the host's; these are the namespace's.
    os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    return {"root": fds[0], "sys": handoff.sysfs_fd, "dir": Path(f"/proc/self/fd/{fds[1]}")}


def attach(tree_fd: int, target: str) -> None:
    """Place a detached mount (from the shim) on `target`, in this mount namespace."""
    target_fd = os.open(target, os.O_PATH | os.O_CLOEXEC)
    try:
        M._syscall(M.SYS_MOVE_MOUNT, ctypes.c_int(tree_fd), b"", ctypes.c_int(target_fd), b"",
                   ctypes.c_uint(M.MOVE_MOUNT_F_EMPTY_PATH | M.MOVE_MOUNT_T_EMPTY_PATH),
                   what=f"attach {target}")
    finally:
        os.close(target_fd)
        os.close(tree_fd)


def bind_device(name: str, node: Path) -> None:
    """mknod is refused in a user namespace (and a node on its tmpfs would not open):
    bind the host's node instead, as runc does for rootless containers."""
    node.touch(mode=0o666)
    L.mount(f"/dev/{name}", str(node), None, L.MS_BIND)
