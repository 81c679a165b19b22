"""Named and anonymous volumes of one host, as Docker's "local" driver keeps them.

    <root>/volumes/                 0700: no host user reaches setuid files in a volume
        .lock                       held while a volume is checked and removed, and
                                    while a container that uses volumes is created
        <name>/meta.json            name, driver, labels, created, anonymous
        <name>/_data/               what containers see; bind-mounted at their target

A volume outlives the containers that use it. It cannot be removed while a
container on this host (in any state but removed) names it in its config;
`users(name)` answers that question for this store (the runtime passes its own).
"""

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from .state import now_iso

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,127}$")
DRIVER = "local"
MAX_LABELS = 256
DATA = "_data"
META = "meta.json"


class VolumeError(Exception):
    """A volume request the engine refuses, with a message meant for the user."""


class NoSuchVolume(VolumeError):
    pass


class VolumeInUse(VolumeError):
    pass


class VolumeStore:
    def __init__(self, engine_root: str | os.PathLike,
                 users: Callable[[str], list[str]] = lambda name: []):
        self.root = Path(engine_root) / "volumes"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.users = users
        for doomed in self.root.glob(".removing-*"):  # a removal a crash interrupted
            shutil.rmtree(doomed, ignore_errors=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One in-use decision at a time, across the agent's threads and processes."""
        with open(self.root / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def path(self, name: str) -> Path:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise VolumeError(f"invalid volume name {name!r}: use 2-128 letters, digits, "
                              "'_', '.' or '-', starting with a letter or digit")
        return self.root / name

    def data_path(self, name: str) -> Path:
        return self.path(name) / DATA

    def exists(self, name: str) -> bool:
        return (self.path(name) / META).is_file()

    # create
    def create(self, name: str | None = None, labels: dict | None = None,
               anonymous: bool = False) -> dict:
        """Create the volume; an existing one is returned unchanged (as `docker volume create`)."""
        name = name or secrets.token_hex(32)
        path = self.path(name)
        labels = _labels(labels)
        if self.exists(name):
            return self.inspect(name)
        tmp = self.root / f".tmp-{name}-{secrets.token_hex(4)}"
        tmp.mkdir(mode=0o700)
        (tmp / DATA).mkdir(mode=0o755)
        meta = {"name": name, "driver": DRIVER, "labels": labels, "created": now_iso(),
                "anonymous": bool(anonymous)}
        (tmp / META).write_text(json.dumps(meta))
        try:
            os.rename(tmp, path)
        except OSError:  # made by a concurrent create meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            if not self.exists(name):
                raise
        return self.inspect(name)

    # read
    def inspect(self, name: str, size: bool = True) -> dict:
        path = self.path(name)
        try:
            meta = json.loads((path / META).read_text())
        except (OSError, ValueError):
            raise NoSuchVolume(f"no such volume: {name}") from None
        report = {**meta, "mountpoint": str(path / DATA), "scope": "local",
                  "in_use_by": self.users(name)}
        if size:
            report["size"] = disk_usage(path / DATA)
        return report

    def names(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir()
                      if not p.name.startswith(".") and (p / META).is_file())

    def list(self, size: bool = False) -> list[dict]:
        reports = []
        for name in self.names():
            with contextlib.suppress(NoSuchVolume):
                reports.append(self.inspect(name, size))
        return reports

    # remove
    def remove(self, name: str, force: bool = False) -> int:
        """Remove the volume and return the bytes it held; refused while a container
        uses it, even with force (as Docker: force only ignores a missing volume)."""
        with self.lock():
            return self._remove_unlocked(name, missing_ok=force)

    def _remove_unlocked(self, name: str, missing_ok: bool = False) -> int:
        path = self.path(name)
        if not self.exists(name):
            if missing_ok:
                return 0
            raise NoSuchVolume(f"no such volume: {name}")
        users = self.users(name)
        if users:
            raise VolumeInUse(f"volume {name} is in use by container(s) "
                              f"{', '.join(u[:12] for u in users)}: remove them first")
        size = disk_usage(path / DATA)
        # Renamed first, so a half-removed volume is never mistaken for a live one.
        doomed = self.root / f".removing-{name}-{secrets.token_hex(4)}"
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return size

    def prune(self, everything: bool = False, labels: dict | None = None) -> dict:
        """Remove unused volumes: anonymous ones only, unless `everything` (Docker ≥ 23).

        `labels` narrows to volumes carrying every given label (value None: any value).
        """
        deleted, reclaimed = [], 0
        with self.lock():
            for report in self.list():
                if not (everything or report.get("anonymous")):
                    continue
                if not _has_labels(report.get("labels") or {}, labels or {}):
                    continue
                if report["in_use_by"]:
                    continue
                reclaimed += self._remove_unlocked(report["name"], missing_ok=True)
                deleted.append(report["name"])
        return {"deleted": deleted, "reclaimed": reclaimed}


def _labels(labels) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or len(labels) > MAX_LABELS:
        raise VolumeError(f"volume labels must be an object of at most {MAX_LABELS} strings")
    for key, value in labels.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise VolumeError(f"invalid volume label {key!r}: names and values are strings")
    return dict(labels)


def _has_labels(labels: dict, wanted: dict) -> bool:
    return all(key in labels and (value is None or labels[key] == value)
               for key, value in wanted.items())


def disk_usage(path: Path) -> int:
    """Bytes the tree takes on disk (allocated blocks), each hard-linked inode once;
    symlinks are not followed and other filesystems mounted inside are not counted."""
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    seen: set[tuple[int, int]] = set()
    total = top.st_blocks * 512
    pending = [str(path)]
    while pending:
        directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_dev != top.st_dev or (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
            if stat.S_ISDIR(info.st_mode):
                pending.append(entry.path)
    return total
