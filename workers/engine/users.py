"""Resolves `user[:group]` against the image's own /etc/passwd and /etc/group.

Runs inside the container's root after pivot_root, so the files read are the
image's, and a symlink in them can only point inside the container. Each file
is read with a size cap: an image must not make the runtime read without end.
"""

import os
import stat
from dataclasses import dataclass

MAX_DATABASE = 1 << 20
# setresuid/setresgid read -1 (4294967295) as "leave unchanged", so an id above
# this would leave the process root; runc refuses ids outside 0..2^31-1 too.
MAX_ID = (1 << 31) - 1


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
        uid = _id(name, "uid", f"user {name}")
    else:
        entry = next((e for e in passwd if e[0] == name), None)
        if entry is None:
            raise UserError(f"unable to find user {name}: no matching entries in passwd file")
        uid = _id(entry[2], "uid", f"user {name} in /etc/passwd")
    home = entry[5] if entry else "/"
    groups_db = [e for e in _entries("/etc/group") if len(e) >= 4]
    if group:
        gid = _group_id(group, groups_db)
    else:
        gid = _id(entry[3], "gid", f"user {name} in /etc/passwd") if entry else 0
    user_name = entry[0] if entry else None
    extra = tuple(sorted({_id(e[2], "gid", f"group {e[0]} in /etc/group") for e in groups_db
                          if user_name and user_name in e[3].split(",")}))
    return User(uid, gid, tuple(sorted({gid, *extra})), home)


def _group_id(group: str, groups_db: list[list[str]]) -> int:
    if group.isdecimal():
        return _id(group, "gid", f"group {group}")
    entry = next((e for e in groups_db if e[0] == group), None)
    if entry is None:
        raise UserError(f"unable to find group {group}: no matching entries in group file")
    return _id(entry[2], "gid", f"group {group} in /etc/group")


def _id(text: str, kind: str, where: str) -> int:
    """A uid or gid in 0..2^31-1; anything else (negative, too large, not a number) is refused."""
    value = text.strip()
    if not value.isascii() or not value.isdecimal() or int(value) > MAX_ID:
        raise UserError(f"{where}: {kind} {value!r} is out of range 0-{MAX_ID}")
    return int(value)
