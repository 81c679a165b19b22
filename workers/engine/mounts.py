"""User mounts (bind, volume, tmpfs) placed in a container's root before pivot_root.

The image and anything a container wrote to a shared volume are hostile: a
mount target may be a symlink to /etc or ../../, or be swapped for one while
we work (CVE-2021-30465). So a target is resolved with openat2(RESOLVE_IN_ROOT)
from an fd of the container's root, kept as an O_PATH fd, and the mount is
attached to that fd with move_mount: no string path inside the root is ever
resolved twice. Read-only mounts are made read-only (recursively) before they
are attached, so there is no moment where they are writable in the container.

Docker's copy-up happens here too: an empty volume mounted over a directory
that has content in the image gets that content first, copied with fd-relative
calls that never follow a symlink.
"""

import contextlib
import ctypes
import fcntl
import os
import stat
from pathlib import Path

from . import linux as L

SYS_OPEN_TREE, SYS_MOVE_MOUNT, SYS_OPENAT2, SYS_MOUNT_SETATTR = 428, 429, 437, 442  # x86_64
RESOLVE_NO_MAGICLINKS, RESOLVE_IN_ROOT = 0x02, 0x10
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH, AT_RECURSIVE = 0x1000, 0x8000
MOVE_MOUNT_F_EMPTY_PATH, MOVE_MOUNT_T_EMPTY_PATH = 0x04, 0x40
MOUNT_ATTR_RDONLY = 0x1
TYPES = ("bind", "volume", "tmpfs")
FORBIDDEN_TARGETS = ("/proc", "/sys")  # the kernel's views, masked and read-only on purpose
COPY_CHUNK = 1 << 20

_libc = ctypes.CDLL(None, use_errno=True)


class MountError(Exception):
    pass


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def _syscall(number: int, *args, what: str) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def open_in_root(root_fd: int, path: str, flags: int = os.O_PATH) -> int:
    """`path` inside the root `root_fd`: symlinks and `..` never leave it (chroot semantics)."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
    return _syscall(SYS_OPENAT2, ctypes.c_int(root_fd), path.encode(), ctypes.byref(how),
                    ctypes.c_size_t(ctypes.sizeof(how)), what=f"open {path} in the root")


def parse_mounts(entries) -> list[dict]:
    """The spec's `mounts`, checked: [{type, source, target, read_only, options}].

    bind: `source` is an absolute host path; options "norecursive" (default: rbind);
    `within`, a host directory `source` is under, resolves `source` inside it as in
    a chroot (a symlink there cannot lead out: what a team's bind policy allows).
    volume: `source` is a volume name, or empty for a new anonymous volume (`anonymous`
    marks a named one as anonymous, to go with `rm -v`); option "nocopy" skips the copy-up.
    tmpfs: `options` are tmpfs's own ("size=64m").
    """
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise MountError("'mounts' must be a list of {type, source, target, read_only}")
    parsed, targets = [], set()
    for entry in entries:
        mount = _parse_mount(entry)
        if mount["target"] in targets:
            raise MountError(f"two mounts on {mount['target']}")
        targets.add(mount["target"])
        parsed.append(mount)
    return parsed


def _parse_mount(entry) -> dict:
    if not isinstance(entry, dict) or entry.get("type") not in TYPES:
        raise MountError(f"invalid mount {entry!r}: type must be one of {', '.join(TYPES)}")
    kind, source = entry["type"], entry.get("source") or ""
    options = entry.get("options") or ""
    if not isinstance(source, str) or not isinstance(options, str):
        raise MountError(f"invalid mount {entry!r}: source and options are strings")
    if any(c in source + options for c in "\0\n"):
        raise MountError(f"invalid mount {entry!r}: NUL byte or newline")
    if kind == "bind" and not (source.startswith("/") and ".." not in source.split("/")):
        raise MountError(f"bind mount source {source!r} must be an absolute host path")
    if kind == "tmpfs" and source:
        raise MountError("a tmpfs mount has no source")
    within = entry.get("within") or ""
    if within and (kind != "bind" or not _is_under(source, within)):
        raise MountError(f"bind mount source {source!r} is not under {within!r}")
    allowed = {"bind": {"norecursive"}, "volume": {"nocopy"}}.get(kind)
    unknown = set(filter(None, options.split(","))) - allowed if allowed is not None else set()
    if unknown:
        raise MountError(f"unknown {kind} mount option(s): {', '.join(sorted(unknown))}")
    mount = {"type": kind, "source": source, "target": validate_target(entry.get("target")),
             "read_only": bool(entry.get("read_only")), "options": options}
    if kind == "volume":
        mount["anonymous"] = bool(entry.get("anonymous")) or not source
    if within:
        mount["within"] = within
    return mount


def _is_under(path: str, root: str) -> bool:
    if not root.startswith("/") or ".." in root.split("/") or ".." in path.split("/"):
        return False
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/") or root == ""


def validate_target(target) -> str:
    """An absolute, normalised path other than / and outside /proc and /sys."""
    if not isinstance(target, str) or not target.startswith("/") or "\0" in target:
        raise MountError(f"invalid mount target {target!r}: use an absolute path")
    parts = [part for part in target.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise MountError(f"invalid mount target {target!r}: use an absolute path other than /")
    normal = "/" + "/".join(parts)
    if any(normal == top or normal.startswith(top + "/") for top in FORBIDDEN_TARGETS):
        raise MountError(f"cannot mount over {normal}: it belongs to the kernel")
    return normal


def make_target(root_fd: int, target: str, directory: bool) -> int:
    """An O_PATH fd of `target` in the root, creating missing parts (a directory, or an
    empty file for a file bind) in-root as well."""
    parts = target.strip("/").split("/")
    parent = os.dup(root_fd)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            relative = "/".join(parts[: index + 1])
            try:
                child = open_in_root(root_fd, relative)
            except FileNotFoundError:
                _create(parent, part, directory or not last)
                child = open_in_root(root_fd, relative)
            os.close(parent)
            parent = child
        return os.dup(parent)
    finally:
        os.close(parent)


def _create(parent_o_path: int, name: str, directory: bool) -> None:
    # The parent fd came from an in-root resolution; creating by name relative to it
    # cannot leave the root, and O_EXCL/mkdir never follow a symlink at the name.
    parent = os.open(f"/proc/self/fd/{parent_o_path}", os.O_RDONLY | os.O_DIRECTORY)
    try:
        if directory:
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o755, dir_fd=parent)
        else:
            with contextlib.suppress(FileExistsError):
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o644, dir_fd=parent))
    finally:
        os.close(parent)


def attach(root_fd: int, mount: dict) -> None:
    """Place one validated mount entry (see runtime's config) in the root."""
    target = validate_target(mount["target"])
    if mount["type"] == "tmpfs":
        target_fd = make_target(root_fd, target, directory=True)
        try:
            flags = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
            flags |= L.MS_RDONLY if mount.get("read_only") else 0
            L.mount("tmpfs", f"/proc/self/fd/{target_fd}", "tmpfs", flags,
                    mount.get("options") or None)
        finally:
            os.close(target_fd)
        return
    source = mount["source"]
    if mount["type"] == "volume" and "nocopy" not in (mount.get("options") or ""):
        copy_up(root_fd, target, Path(source))
    source_fd = _open_source(source, mount.get("within") or "")
    try:
        target_fd = make_target(root_fd, target, stat.S_ISDIR(os.fstat(source_fd).st_mode))
        try:
            _bind(source_fd, source, target_fd, bool(mount.get("read_only")),
                  recursive="norecursive" not in (mount.get("options") or ""))
        finally:
            os.close(target_fd)
    finally:
        os.close(source_fd)


def _open_source(source: str, within: str) -> int:
    """An O_PATH fd of the bind source; with `within`, resolved inside that directory."""
    if not within:
        return os.open(source, os.O_PATH | os.O_CLOEXEC)
    root = os.open(within, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        relative = source[len(within.rstrip("/")):].lstrip("/") or "."
        return open_in_root(root, relative)
    finally:
        os.close(root)


def _bind(source_fd: int, source: str, target_fd: int, read_only: bool, recursive: bool) -> None:
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    tree = _syscall(SYS_OPEN_TREE, ctypes.c_int(source_fd), b"", ctypes.c_uint(flags),
                    what=f"open_tree {source}")
    try:
        if read_only:
            attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
            _syscall(SYS_MOUNT_SETATTR, ctypes.c_int(tree), b"",
                     ctypes.c_uint(AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)),
                     ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
                     what=f"make {source} read-only")
        _syscall(SYS_MOVE_MOUNT, ctypes.c_int(tree), b"", ctypes.c_int(target_fd), b"",
                 ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
                 what=f"mount {source}")
    finally:
        os.close(tree)


def attach_all(rootfs: Path, mounts: list[dict]) -> None:
    """Every mount, parents before children (as Docker sorts them by depth)."""
    ordered = sorted(mounts, key=lambda m: validate_target(m["target"]).count("/"))
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mount in ordered:
            try:
                attach(root_fd, mount)
            except OSError as exc:
                raise MountError(f"mount {mount['type']} on {mount['target']}: "
                                 f"{exc.strerror or exc}") from exc
    finally:
        os.close(root_fd)


# ---- copy-up ------------------------------------------------------------------------------


def copy_up(root_fd: int, target: str, volume_data: Path) -> bool:
    """Copy the image's content at `target` into an empty volume; True when it copied.

    The volume's directory also takes the mode and owner of the image's directory,
    as Docker does. Regular files, directories, symlinks (as links, never followed)
    and FIFOs are copied with modes, owners and times; device nodes are not.
    """
    try:
        source = open_in_root(root_fd, target, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        with open(volume_data.parent / "meta.json") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one copy-up per volume at a time
            destination = os.open(volume_data, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                if os.listdir(destination):
                    return False
                _copy_tree(source, destination)
                _copy_attributes(os.fstat(source), destination)
                return True
            finally:
                os.close(destination)
    finally:
        os.close(source)


def _copy_tree(source: int, destination: int) -> None:
    for name in os.listdir(source):
        info = os.stat(name, dir_fd=source, follow_symlinks=False)
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=destination)
            inner_source = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                                   dir_fd=source)
            inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                            dir_fd=destination)
            try:
                _copy_tree(inner_source, inner)
                _copy_attributes(info, inner)
            finally:
                os.close(inner_source)
                os.close(inner)
        elif stat.S_ISREG(mode):
            _copy_file(source, destination, name, info)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=destination)
            os.chown(name, info.st_uid, info.st_gid, dir_fd=destination, follow_symlinks=False)
        elif stat.S_ISFIFO(mode):
            os.mkfifo(name, 0o600, dir_fd=destination)
            fifo = os.open(name, os.O_PATH | os.O_NOFOLLOW, dir_fd=destination)
            try:
                os.chown(f"/proc/self/fd/{fifo}", info.st_uid, info.st_gid)
                os.chmod(f"/proc/self/fd/{fifo}", stat.S_IMODE(mode))
            finally:
                os.close(fifo)


def _copy_file(source: int, destination: int, name: str, info: os.stat_result) -> None:
    reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=source)
    try:
        writer = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                         dir_fd=destination)
        try:
            while os.sendfile(writer, reader, None, COPY_CHUNK):
                pass
            _copy_attributes(info, writer)
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _copy_attributes(info: os.stat_result, fd: int) -> None:
    # chown before chmod: chown clears setuid and setgid bits.
    os.fchown(fd, info.st_uid, info.st_gid)
    os.fchmod(fd, stat.S_IMODE(info.st_mode))
    os.utime(fd, ns=(info.st_atime_ns, info.st_mtime_ns))
