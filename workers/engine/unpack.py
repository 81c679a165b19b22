"""Extracts one layer tar into its own directory, safely, in overlayfs's format.

Layers are hostile input. Every path is resolved one component at a time
with O_NOFOLLOW relative to the layer's directory fd, so nothing is written
outside the layer through `..`, absolute names, symlinked parent directories
or hardlinks; symlinks are created as they are and never followed; owners are
the numeric ids from the tar (no user database is consulted); device nodes are
never created. OCI whiteouts become overlayfs whiteouts (a 0:0 character
device) and opaque markers become the `trusted.overlay.opaque` xattr, so the
directory can serve directly as an overlay lower layer.
"""

import contextlib
import errno
import os
import stat
import tarfile

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class UnsafeLayer(Exception):
    """The layer tries to do something a layer must not; the message says what."""


def split_name(name: str) -> list[str]:
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafeLayer(f"{name!r}: '..' would leave the layer")
    return parts


def extract(stream, target: str | os.PathLike) -> None:
    """Extract an uncompressed tar stream into the existing directory `target`."""
    root_fd = os.open(target, _DIR_FLAGS)
    try:
        extract_at(stream, root_fd)
    finally:
        os.close(root_fd)


def extract_at(stream, root_fd: int, whiteouts: bool = True) -> None:
    """Extract into the directory open as `root_fd`. Without `whiteouts` (a copy into a
    container, not a layer), `.wh.` names are ordinary files, as `docker cp` has them."""
    directory_times: list[tuple[list[str], int]] = []
    with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as archive:
        for member in archive:
            parts = split_name(member.name)
            if not parts:
                continue
            if member.isdir():
                directory_times.append((parts, int(member.mtime)))
            _extract_member(archive, member, root_fd, parts, whiteouts)
    for parts, mtime in reversed(directory_times):
        _set_mtime(root_fd, parts, mtime)


def _extract_member(archive, member: tarfile.TarInfo, root_fd: int, parts: list[str],
                    whiteouts: bool = True) -> None:
    parent_fd = open_dir(root_fd, parts[:-1], member.name)
    base = parts[-1]
    try:
        if whiteouts and base == OPAQUE_MARKER:
            os.setxattr(parent_fd, OPAQUE_XATTR, b"y")
        elif whiteouts and base.startswith(WHITEOUT_PREFIX):
            _whiteout(parent_fd, base[len(WHITEOUT_PREFIX):], member.name)
        elif member.isdir():
            _make_dir(parent_fd, base, member)
        elif member.isreg():
            _make_file(archive, parent_fd, base, member)
        elif member.issym():
            _clear(parent_fd, base)
            os.symlink(member.linkname, base, dir_fd=parent_fd)
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        elif member.islnk():
            _make_hardlink(root_fd, parent_fd, base, member)
        elif member.isfifo():
            _clear(parent_fd, base)
            os.mkfifo(base, member.mode & 0o7777, dir_fd=parent_fd)
            os.chown(base, member.uid, member.gid, dir_fd=parent_fd, follow_symlinks=False)
        # Character and block devices are skipped: a layer must not give a
        # container (or the host) a device node.
    finally:
        os.close(parent_fd)


def open_dir(root_fd: int, parts: list[str], name: str = "") -> int:
    """An fd for root/parts, creating missing directories and refusing symlinks."""
    fd = os.dup(root_fd)
    for part in parts:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, 0o755, dir_fd=fd)
        try:
            next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise UnsafeLayer(f"{name!r}: its parent {part!r} is not a directory "
                                  "(a symlink is never followed)") from None
            raise
        os.close(fd)
        fd = next_fd
    return fd


def _clear(parent_fd: int, base: str, keep_dir: bool = False) -> None:
    """Remove what is at base so a later entry replaces it, as tar does."""
    if base in ("", ".", ".."):
        raise UnsafeLayer(f"refusing to replace {base!r}")
    try:
        info = os.stat(base, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if keep_dir:
            return
        _remove_tree(parent_fd, base)
    else:
        os.unlink(base, dir_fd=parent_fd)


def _remove_tree(parent_fd: int, base: str) -> None:
    fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        for entry in os.listdir(fd):
            info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                _remove_tree(fd, entry)
            else:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(base, dir_fd=parent_fd)


def _whiteout(parent_fd: int, hidden: str, name: str) -> None:
    if hidden in ("", ".", "..") or "/" in hidden:
        raise UnsafeLayer(f"{name!r}: malformed whiteout")
    _clear(parent_fd, hidden)
    os.mknod(hidden, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=parent_fd)


def _make_dir(parent_fd: int, base: str, member: tarfile.TarInfo) -> None:
    _clear(parent_fd, base, keep_dir=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(base, 0o700, dir_fd=parent_fd)
    fd = os.open(base, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        _own(fd, member)
    finally:
        os.close(fd)


def _make_file(archive, parent_fd: int, base: str, member: tarfile.TarInfo) -> None:
    _clear(parent_fd, base)
    fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=parent_fd)
    try:
        source = archive.extractfile(member)
        while chunk := source.read(CHUNK):
            os.write(fd, chunk)
        _own(fd, member)
        os.utime(fd, ns=(int(member.mtime) * 10**9,) * 2)
    finally:
        os.close(fd)


def _own(fd: int, member: tarfile.TarInfo) -> None:
    # chown first: it clears set-id bits, which the chmod after restores.
    os.fchown(fd, member.uid, member.gid)
    os.fchmod(fd, member.mode & 0o7777)


def _make_hardlink(root_fd: int, parent_fd: int, base: str, member: tarfile.TarInfo) -> None:
    target_parts = split_name(member.linkname)
    if not target_parts:
        raise UnsafeLayer(f"{member.name!r}: hardlink to the layer root")
    source_fd = open_dir(root_fd, target_parts[:-1], member.linkname)
    try:
        _clear(parent_fd, base)
        try:
            os.link(target_parts[-1], base, src_dir_fd=source_fd, dst_dir_fd=parent_fd,
                    follow_symlinks=False)
        except FileNotFoundError:
            raise UnsafeLayer(f"{member.name!r}: hardlink target {member.linkname!r} "
                              "is not in this layer") from None
    finally:
        os.close(source_fd)


def _set_mtime(root_fd: int, parts: list[str], mtime: int) -> None:
    try:
        fd = open_dir(root_fd, parts)
    except (UnsafeLayer, OSError):
        return  # replaced by a later entry
    try:
        os.utime(fd, ns=(mtime * 10**9,) * 2)
    finally:
        os.close(fd)
