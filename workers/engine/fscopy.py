"""Files in and out of a container as tar streams (`docker cp`), and its export.

Paths are resolved inside the container's root (inroot.py); below the path,
the tree is walked with fd-relative O_NOFOLLOW opens, and a copy in goes
through the layer extractor (unpack.py), which never follows a symlink
either. Modes, numeric owners, mtimes, symlinks and hardlinks are kept.
"""

import base64
import datetime
import json
import os
import posixpath
import stat
import tarfile
from pathlib import Path

from . import inroot, unpack
from .inroot import CopyError, NotFound

CHUNK = 1 << 20
# Kernel filesystems the runtime mounts: a walk from above shows them empty, as
# the image has them, and nothing is ever copied into them.
RUNTIME_MOUNTS = ("/proc", "/sys", "/dev")
NO_COPY = ("/proc", "/sys")
# Go's os.FileMode bits, which Docker's path stat carries.
GO_DIR, GO_SYMLINK, GO_DEVICE, GO_PIPE, GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
GO_SETUID, GO_SETGID, GO_CHARDEV, GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20
STAT_HEADER = "X-Docker-Container-Path-Stat"


# stat
def stat_path(container_dir: Path, path: str) -> dict:
    """Docker's path stat of `path` in the container: name, size, mode, mtime, linkTarget."""
    return inroot.with_root(container_dir, lambda root_fd: _stat(root_fd, path))


def _stat(root_fd: int, path: str) -> dict:
    resolved = inroot.resolve(root_fd, _absolute(path), follow=_follows(path))
    try:
        info = os.fstat(resolved.fd)
        target = ""
        if stat.S_ISLNK(info.st_mode):
            followed = inroot.resolve(root_fd, resolved.path, follow=True)
            target = followed.path
            followed.close()
        return {"name": _top_name(path), "size": info.st_size, "mode": go_file_mode(info.st_mode),
                "mtime": go_time(info.st_mtime_ns), "linkTarget": target}
    finally:
        resolved.close()


def stat_header(path_stat: dict) -> str:
    """The X-Docker-Container-Path-Stat value: standard base64 of the JSON."""
    return base64.b64encode(json.dumps(path_stat).encode()).decode()


def go_file_mode(mode: int) -> int:
    result = mode & 0o777
    for flag, bit in ((stat.S_ISUID, GO_SETUID), (stat.S_ISGID, GO_SETGID),
                      (stat.S_ISVTX, GO_STICKY)):
        if mode & flag:
            result |= bit
    kind = stat.S_IFMT(mode)
    result |= {stat.S_IFDIR: GO_DIR, stat.S_IFLNK: GO_SYMLINK, stat.S_IFBLK: GO_DEVICE,
               stat.S_IFCHR: GO_DEVICE | GO_CHARDEV, stat.S_IFIFO: GO_PIPE,
               stat.S_IFSOCK: GO_SOCKET}.get(kind, 0)
    return result


def go_time(ns: int) -> str:
    seconds, nanos = divmod(ns, 10**9)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{stamp}{fraction}Z"


# copy out
def copy_out(container_dir: Path, path: str, out) -> dict:
    """Write `path` (a file, or a directory and all below it) as a tar stream to the
    binary file `out`, named from its base name as Docker does; returns its stat.
    `out` must be a real file: a stopped container's copy is written by a child."""
    out.fileno()
    def work(root_fd: int) -> dict:
        path_stat = _stat(root_fd, path)
        resolved = inroot.resolve(root_fd, _absolute(path), follow=_follows(path))
        try:
            _refuse_kernel_fs(resolved.path)
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
                walker = _Walker(archive, one_filesystem=False)
                walker.add(resolved.parent_fd, resolved.name, resolved.fd, _top_name(path),
                           resolved.path, top=True)
            out.flush()
        finally:
            resolved.close()
        return path_stat
    return inroot.with_root(container_dir, work)


def export(container_dir: Path, out) -> None:
    """The container's flattened root filesystem as a tar stream (`docker export`):
    its image and writable layer, without the kernel filesystems and volumes."""
    out.fileno()
    def work(root_fd: int) -> None:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
            _Walker(archive, one_filesystem=True).add_children(root_fd, "", "/")
        out.flush()
    inroot.with_root(container_dir, work)


class _Walker:
    def __init__(self, archive: tarfile.TarFile, one_filesystem: bool):
        self.archive = archive
        self.one_filesystem = one_filesystem
        self.hardlinks: dict[tuple[int, int], str] = {}
        self.root_dev: int | None = None

    def add(self, parent_fd: int, name: str, fd: int, tar_name: str, path: str,
            top: bool = False) -> None:
        info = os.fstat(fd)
        entry = tarfile.TarInfo(tar_name)
        entry.mode, entry.uid, entry.gid = stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
        entry.mtime = info.st_mtime
        kind = stat.S_IFMT(info.st_mode)
        if kind == stat.S_IFREG:
            self._add_file(fd, info, entry)
        elif kind == stat.S_IFDIR:
            entry.type = tarfile.DIRTYPE
            self.archive.addfile(entry)
            if top or self._descends(info, path):
                self.add_children(fd, tar_name, path)
        elif kind == stat.S_IFLNK:
            entry.type = tarfile.SYMTYPE
            try:
                entry.linkname = os.readlink(name, dir_fd=parent_fd)
            except OSError:
                return  # replaced meanwhile
            self.archive.addfile(entry)
        elif kind in (stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO):
            entry.type = {stat.S_IFCHR: tarfile.CHRTYPE, stat.S_IFBLK: tarfile.BLKTYPE,
                          stat.S_IFIFO: tarfile.FIFOTYPE}[kind]
            entry.devmajor, entry.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            self.archive.addfile(entry)
        # Sockets have no tar form.

    def _descends(self, info: os.stat_result, path: str) -> bool:
        if path in RUNTIME_MOUNTS:
            return False
        if self.one_filesystem:
            return info.st_dev == self.root_dev
        return True

    def add_children(self, dir_path_fd: int, tar_name: str, path: str) -> None:
        directory = inroot.reopen(dir_path_fd, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if self.root_dev is None:
                self.root_dev = os.fstat(directory).st_dev
            for child in sorted(os.listdir(directory)):
                try:
                    fd = os.open(child, inroot.PATH_FLAGS, dir_fd=directory)
                except OSError:
                    continue  # removed meanwhile
                try:
                    self.add(directory, child, fd, f"{tar_name}/{child}" if tar_name else child,
                             posixpath.join(path, child))
                finally:
                    os.close(fd)
        finally:
            os.close(directory)

    def _add_file(self, fd: int, info: os.stat_result, entry: tarfile.TarInfo) -> None:
        key = (info.st_dev, info.st_ino)
        if info.st_nlink > 1 and key in self.hardlinks:
            entry.type, entry.linkname = tarfile.LNKTYPE, self.hardlinks[key]
            self.archive.addfile(entry)
            return
        if info.st_nlink > 1:
            self.hardlinks[key] = entry.name
        entry.size = info.st_size
        reader = inroot.reopen(fd, os.O_RDONLY)
        try:
            self.archive.addfile(entry, exact_reader(reader, info.st_size))
        finally:
            os.close(reader)


def exact_reader(fd: int, size: int) -> "_Exact":
    return _Exact(fd, size)


class _Exact:
    """Exactly `size` bytes of a file another process may be changing: cut when it
    grew, padded with zeros when it shrank, so the tar stays well formed."""

    def __init__(self, fd: int, size: int):
        self.fd, self.left = fd, size

    def read(self, size: int = CHUNK) -> bytes:
        size = min(size if size >= 0 else self.left, self.left)
        chunks, got = [], 0
        while got < size:
            data = os.read(self.fd, size - got)
            if not data:
                break
            chunks.append(data)
            got += len(data)
        self.left -= size
        return b"".join(chunks) + b"\0" * (size - got)


# copy in
def copy_in(container_dir: Path, path: str, source, no_overwrite_dir_non_dir: bool = False,
            read_only: bool = False) -> None:
    """Extract the tar stream `source` into the directory `path` of the container.

    `no_overwrite_dir_non_dir`: refuse (before writing anything; `source` must
    then be seekable) when a directory would replace a non-directory or the
    reverse, as Docker's `noOverwriteDirNonDir`. `read_only`: the container's
    root filesystem is read-only, so a stopped container takes nothing. `source`
    must be a real file, as `out` of `copy_out`.
    """
    source.fileno()
    if read_only and not inroot.is_running(container_dir):
        raise CopyError("container rootfs is marked read-only")

    def work(root_fd: int) -> None:
        resolved = inroot.resolve(root_fd, _absolute(path), follow=True)
        try:
            _refuse_kernel_fs(resolved.path)
            if not stat.S_ISDIR(os.fstat(resolved.fd).st_mode):
                raise CopyError("extraction point is not a directory")
            target = inroot.reopen(resolved.fd, os.O_RDONLY | os.O_DIRECTORY)
        finally:
            resolved.close()
        try:
            if no_overwrite_dir_non_dir:
                _check_kinds(source, target)
            unpack.extract_at(source, target, whiteouts=False)
        except unpack.UnsafeLayer as exc:
            raise CopyError(str(exc)) from None
        except tarfile.TarError as exc:
            raise CopyError(f"not a tar archive: {exc}") from None
        except OSError as exc:
            raise CopyError(f"cannot write into {path}: {exc.strerror or exc}") from None
        finally:
            os.close(target)
    inroot.with_root(container_dir, work, writable=True)


def _check_kinds(source, target_fd: int) -> None:
    start = source.tell()
    with tarfile.open(fileobj=source, mode="r|") as archive:
        for member in archive:
            parts = unpack.split_name(member.name)
            existing = _lstat_below(target_fd, parts) if parts else None
            if existing is None:
                continue
            if stat.S_ISDIR(existing.st_mode) and not member.isdir():
                raise CopyError(f"cannot overwrite directory {member.name!r} with a non-directory")
            if not stat.S_ISDIR(existing.st_mode) and member.isdir():
                raise CopyError(f"cannot overwrite non-directory {member.name!r} with a directory")
    source.seek(start)


def _lstat_below(root_fd: int, parts: list[str]) -> os.stat_result | None:
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            try:
                next_fd = os.open(part, inroot.PATH_FLAGS | os.O_DIRECTORY, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = next_fd
        try:
            return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        except OSError:
            return None
    finally:
        os.close(fd)


# names
def _absolute(path: str) -> str:
    if not isinstance(path, str) or not path or "\0" in path:
        raise CopyError("a path in the container is required")
    return path if path.startswith("/") else "/" + path


def _follows(path: str) -> bool:
    """`dir/` and `dir/.` name what a final symlink points to, as in Docker."""
    return path.endswith("/") or path.endswith("/.")


def _top_name(path: str) -> str:
    name = posixpath.basename(path.rstrip("/"))
    return name or "."


def _refuse_kernel_fs(path: str) -> None:
    if any(path == top or path.startswith(top + "/") for top in NO_COPY):
        raise CopyError(f"cannot copy {path}: it is on a kernel filesystem")


__all__ = ["CopyError", "NotFound", "STAT_HEADER", "copy_in", "copy_out", "export",
           "stat_header", "stat_path"]
