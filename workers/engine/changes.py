"""What a container changed against its image (`docker diff`), from its writable layer.

The overlay's `upper/` holds every file the container added or changed; a
deletion is a whiteout there (a 0:0 character device), and a directory
that replaced one of the image's is opaque (`trusted.overlay.opaque=y`).
The layer is container-controlled, so it is walked with fd-relative
O_NOFOLLOW opens; the image's layers below are the store's own.

Kinds and order are Docker's: Changed 0, Added 1, Deleted 2, depth first in
name order, and the parent directory of an addition or deletion is reported
changed before it.
"""

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHANGED, ADDED, DELETED = 0, 1, 2
OPAQUE_XATTR = "trusted.overlay.opaque"
# A renamed directory (redirect_dir) or a metadata-only copy (metacopy) keeps
# content in the layers below: neither diff nor commit could see it.
UNSUPPORTED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_HIDDEN = object()  # a layer hides the path from the layers below it


class ChangesError(Exception):
    """The writable layer cannot be read or committed as asked (HTTP 409)."""

    code = "conflict"


class InvalidChange(ChangesError):
    """A commit request that can never work as sent (HTTP 400)."""

    code = "invalid"


@dataclass
class UpperEntry:
    """One entry of the writable layer; `parent_fd` is open while it is looked at."""

    parts: tuple[str, ...]
    info: os.stat_result
    parent_fd: int
    name: str
    whiteout: bool
    opaque: bool

    @property
    def path(self) -> str:
        return "/" + "/".join(self.parts)


def walk_upper(upper: Path) -> Iterator[UpperEntry]:
    """Every entry of the writable layer, depth first, names sorted."""
    root_fd = os.open(upper, _DIR_FLAGS)
    try:
        yield from _walk(root_fd, ())
    finally:
        os.close(root_fd)


def _walk(dir_fd: int, parts: tuple[str, ...]) -> Iterator[UpperEntry]:
    for name in sorted(os.listdir(dir_fd)):
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # a running container removed it meanwhile
        if not stat.S_ISDIR(info.st_mode):
            if stat.S_ISREG(info.st_mode):
                _refuse_unsupported(dir_fd, name)
            yield UpperEntry(parts + (name,), info, dir_fd, name, is_whiteout(info), False)
            continue
        try:
            child_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError:
            continue  # replaced by a non-directory meanwhile
        try:
            _refuse_unsupported(child_fd, None)
            yield UpperEntry(parts + (name,), info, dir_fd, name, False, _is_opaque(child_fd))
            yield from _walk(child_fd, parts + (name,))
        finally:
            os.close(child_fd)


def is_whiteout(info: os.stat_result) -> bool:
    return stat.S_ISCHR(info.st_mode) and info.st_rdev == 0


def _is_opaque(dir_fd: int) -> bool:
    try:
        return os.getxattr(dir_fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _refuse_unsupported(dir_fd: int, name: str | None) -> None:
    target = dir_fd if name is None else f"/proc/self/fd/{dir_fd}/{name}"
    for attribute in UNSUPPORTED_XATTRS:
        with contextlib.suppress(OSError):
            if name is None:
                os.getxattr(target, attribute)
            else:
                os.getxattr(target, attribute, follow_symlinks=False)
            raise ChangesError(f"the writable layer has {attribute} entries, which this "
                               "engine cannot read; mount overlays without redirect_dir "
                               "and metacopy")


# diff
def changes(config: dict) -> list[dict]:
    """`[{"Path", "Kind"}]` for the container whose config.json is `config`."""
    lowers = [Path(d) for d in config["lowerdirs"]]
    result: list[dict] = []
    changed_dirs: set[str] = set()
    for entry in walk_upper(Path(config["upperdir"])):
        kind = _kind(entry, lowers)
        if kind is None:
            continue
        if stat.S_ISDIR(entry.info.st_mode):
            changed_dirs.add(entry.path)
        if kind in (ADDED, DELETED):
            parent = os.path.dirname(entry.path)
            if parent != "/" and parent not in changed_dirs:
                result.append({"Path": parent, "Kind": CHANGED})
                changed_dirs.add(parent)
        result.append({"Path": entry.path, "Kind": kind})
    return result


def _kind(entry: UpperEntry, lowers: list[Path]) -> int | None:
    """The change an entry records, or None for a directory only copied up."""
    if entry.whiteout:
        return DELETED
    below = lower_entry(lowers, entry.parts)
    if entry.opaque and below is not None:
        return DELETED  # Docker's word for a directory the container replaced
    if below is None:
        return ADDED
    if (stat.S_ISDIR(entry.info.st_mode) and stat.S_ISDIR(below.st_mode)
            and entry.info.st_size == below.st_size and entry.info.st_mode == below.st_mode
            and entry.info.st_mtime_ns // 1000 == below.st_mtime_ns // 1000):
        return None
    return CHANGED


def lower_entry(lowers: list[Path], parts: tuple[str, ...]) -> os.stat_result | None:
    """What the image (layers top first) has at `parts`, honouring its whiteouts."""
    for layer in lowers:
        found = _in_layer(layer, parts)
        if found is _HIDDEN:
            return None
        if found is not None:
            return found
    return None


def _in_layer(layer: Path, parts: tuple[str, ...]):
    path, opaque_above = layer, False
    for index, part in enumerate(parts):
        path = path / part
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return _HIDDEN if opaque_above else None
        if is_whiteout(info):
            return _HIDDEN
        if index == len(parts) - 1:
            return info
        if not stat.S_ISDIR(info.st_mode):
            return _HIDDEN  # a file or symlink here hides what lies below it
        opaque_above = opaque_above or _path_is_opaque(path)
    return None


def _path_is_opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False
