"""Resolves `user[:group]` against the image's own /etc/passwd and /etc/group.

Runs inside the container's root after pivot_root, so the files read are the
image's, and a symlink in them can only point inside the container. Each file
is read with a size cap: an image must not make the runtime read without end.
"""

import os
import stat
from dataclasses import dataclass

MAX_DATABASE = 1 << 20


class UserError(Exception):
    pass


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str


def _entries(path: str) -> list[list[str]]:
    # Non-blocking and regular files only: an image's /etc/passwd may be a FIFO.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(f"{path} in the image is not a regular file")
        data = handle.read(MAX_DATABASE + 1)
    if len(data) > MAX_DATABASE:
        raise UserError(f"{path} in the image is larger than {MAX_DATABASE} bytes")
    text = data.decode(errors="replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve(spec: str | None) -> User:
    name, _, group = (spec or "").partition(":")
    if not name:
        name = "0"
    passwd = [e for e in _entries("/etc/passwd") if len(e) >= 7]
    if name.isdecimal():
        entry = next((e for e in passwd if e[2] == name), None)
        uid = int(name)
    else:
        entry = next((e for e in passwd if e[0] == name), None)
        if entry is None:
            raise UserError(f"unable to find user {name}: no matching entries in passwd file")
        uid = int(entry[2])
    home = entry[5] if entry else "/"
    groups_db = [e for e in _entries("/etc/group") if len(e) >= 4]
    gid = _group_id(group, groups_db) if group else (int(entry[3]) if entry else 0)
    user_name = entry[0] if entry else None
    extra = tuple(sorted({int(e[2]) for e in groups_db
                          if user_name and user_name in e[3].split(",") and e[2].isdecimal()}))
    return User(uid, gid, tuple(sorted({gid, *extra})), home)


def _group_id(group: str, groups_db: list[list[str]]) -> int:
    if group.isdecimal():
        return int(group)
    entry = next((e for e in groups_db if e[0] == group), None)
    if entry is None:
        raise UserError(f"unable to find group {group}: no matching entries in group file")
    return int(entry[2])
