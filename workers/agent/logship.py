"""Ships container log records from the host's files into Redis Streams.

The shim writes logs to files and never waits for anyone; this thread follows
those files (inotify, so no polling) and appends each record to the stream
`berth:logs:<container id>`. Entry ids are `<record time in ms>-<bytes shipped
before it>`, both non-decreasing, so a record shipped twice after a crash is
refused by Redis as an old id: readers see no duplicates, and resume from the
last id they saw without gaps. Positions survive agent restarts in each
container's `shipped.json`. While Redis is down, shipping waits and catches up.
"""

import calendar
import json
import logging
import os
import select
import threading
from pathlib import Path

import redis

from workers.engine.inotify import Watcher

log = logging.getLogger("berth.agent")
IN_MODIFY, IN_MOVED_TO, IN_CREATE = 0x2, 0x80, 0x100
STREAM_MAXLEN = 200_000
BATCH = 2000
READ_SIZE = 1 << 20
RETRY_INTERVAL = 1.0
REMOVED_STREAM_GRACE = 30  # seconds a removed container's stream stays readable


def stream_key(container_id: str) -> str:
    return f"berth:logs:{container_id}"


def record_ms(stamp: bytes) -> int:
    """Milliseconds since the epoch of `2026-11-27T22:12:41.123456789Z`.

    Sliced by hand: time.strptime is slow, and its lazy first import races
    between threads.
    """
    if len(stamp) < 23 or stamp[4:5] != b"-" or stamp[10:11] != b"T" or stamp[19:20] != b".":
        raise ValueError(f"not a record time: {stamp[:40]!r}")
    fields = (stamp[0:4], stamp[5:7], stamp[8:10], stamp[11:13], stamp[14:16], stamp[17:19])
    seconds = calendar.timegm(tuple(int(field) for field in fields) + (0, 0, 0))
    return seconds * 1000 + int(stamp[20:23])


class Follower:
    """One container's log file: where we are in it, and how much we shipped in all."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / "container.log"
        self.position_path = directory / "shipped.json"
        saved = self._load()
        self.inode = saved.get("inode")
        self.offset = saved.get("offset", 0)
        self.shipped = saved.get("shipped", 0)
        self.last_ms = saved.get("last_ms", 0)
        self.handle = None
        self.lock = threading.Lock()

    def _load(self) -> dict:
        try:
            return json.loads(self.position_path.read_text())
        except (OSError, ValueError):
            return {}

    def save(self) -> None:
        tmp = self.position_path.with_name(".shipped.tmp")
        tmp.write_text(json.dumps({"inode": self.inode, "offset": self.offset,
                                   "shipped": self.shipped, "last_ms": self.last_ms}))
        os.replace(tmp, self.position_path)

    def _open(self, path: Path | None = None) -> bool:
        if self.handle is not None:
            return True
        try:
            self.handle = open(path or self._resume_path(), "rb")  # noqa: SIM115 - kept
        except FileNotFoundError:
            return False
        inode = os.fstat(self.handle.fileno()).st_ino
        if inode != self.inode:
            self.inode, self.offset = inode, 0
        return True

    def read_lines(self) -> list[bytes]:
        """Whole new lines, file after file: a rotated file is finished before the next."""
        if not self._open():
            return []
        lines = self._whole_lines()
        if lines or self._is_live():
            return lines
        # Our file was renamed: the shim closes a file before renaming it, so it is
        # final. Read it once more (it may have grown after the read above), then
        # go on with the file that came after it.
        lines = self._whole_lines()
        if lines:
            return lines
        successor = self._successor()
        self.handle.close()
        self.handle = None
        self.inode, self.offset = None, 0
        if not self._open(successor):
            return []
        return self.read_lines()

    def _whole_lines(self) -> list[bytes]:
        """Complete lines from our offset, read with pread: no buffered file state to
        drift from the offset while the supervisor appends."""
        fd = self.handle.fileno()
        if os.fstat(fd).st_size < self.offset:
            self.offset = 0  # truncated in place (rotation with max_files=1): start over
        data = os.pread(fd, READ_SIZE, self.offset)
        end = data.rfind(b"\n")
        # split on \n only: a terminal's lines carry \r, which belongs to the content
        return [line + b"\n" for line in data[:end].split(b"\n")] if end >= 0 else []

    def _is_live(self) -> bool:
        try:
            return os.stat(self.path).st_ino == self.inode
        except FileNotFoundError:
            return True

    def _files(self) -> list[Path]:
        """The log files, newest first: container.log, .1, .2, …"""
        files = [self.path]
        index = 1
        while Path(f"{self.path}.{index}").exists():
            files.append(Path(f"{self.path}.{index}"))
            index += 1
        return files

    def _resume_path(self) -> Path:
        """The file holding our saved position; else the oldest, so nothing is skipped."""
        files = self._files()
        for path in files:
            try:
                if os.stat(path).st_ino == self.inode:
                    return path
            except FileNotFoundError:
                continue
        return files[-1]

    def _successor(self) -> Path:
        """The file written after ours: `.k-1` when ours is now `.k`; the oldest one left
        when ours was rotated away while we read it."""
        rotated = []
        for index in range(1, 1000):
            candidate = Path(f"{self.path}.{index}")
            try:
                inode = os.stat(candidate).st_ino
            except FileNotFoundError:
                break
            if inode == self.inode:
                return Path(f"{self.path}.{index - 1}") if index > 1 else self.path
            rotated.append(candidate)
        return rotated[-1] if rotated else self.path

    def advance(self, lines: list[bytes], last_ms: int) -> None:
        size = sum(len(line) for line in lines)
        self.offset += size
        self.shipped += size
        self.last_ms = last_ms

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class LogShipper:
    def __init__(self, redis_url: str, containers_root: Path):
        self.redis = redis.Redis.from_url(redis_url, socket_timeout=5)
        self.root = containers_root
        self.followers: dict[str, Follower] = {}
        self.watcher = Watcher()
        self._lock = threading.Lock()

    def follow(self, container_id: str) -> None:
        with self._lock:
            if container_id in self.followers:
                return
            directory = self.root / container_id
            self.followers[container_id] = Follower(directory)
        self.watcher.add(str(directory), IN_MODIFY | IN_MOVED_TO | IN_CREATE)
        self.ship(container_id)

    def forget(self, container_id: str) -> None:
        """The container was removed: stop following, and let its stream go after a grace,
        so a reader still following it (`docker run --rm`) gets to its end."""
        with self._lock:
            follower = self.followers.pop(container_id, None)
        if follower:
            follower.close()
            self.watcher.forget(str(follower.directory))
        try:
            self.redis.expire(stream_key(container_id), REMOVED_STREAM_GRACE)
        except redis.RedisError as exc:
            log.warning("could not expire the log stream of %s: %s", container_id, exc)

    def ship(self, container_id: str) -> bool:
        """Ship what is new; False when Redis refused, to be tried again later."""
        follower = self.followers.get(container_id)
        if follower is None:
            return True
        with follower.lock:  # the thread and a task may both ask for the same container
            return self._ship(container_id, follower)

    def _ship(self, container_id: str, follower: "Follower") -> bool:
        while lines := follower.read_lines():
            for start in range(0, len(lines), BATCH):
                batch = lines[start:start + BATCH]
                last_ms = self._send(container_id, follower, batch)
                if last_ms is None:
                    return False
                follower.advance(batch, last_ms)
            follower.save()
        return True

    def _send(self, container_id: str, follower: Follower, lines: list[bytes]) -> int | None:
        """XADD the lines; the last entry's ms, or None when Redis refused."""
        pipe = self.redis.pipeline(transaction=False)
        position, last_ms = follower.shipped, follower.last_ms
        for line in lines:
            try:
                stamp, stream, tag, content = line.rstrip(b"\n").split(b" ", 3)
                ms = record_ms(stamp)
            except ValueError:
                position += len(line)  # not a record (a torn write): skip, never retry it
                continue
            # Never below the previous id, even if the wall clock stepped back.
            last_ms = max(last_ms, ms)
            entry_id = f"{last_ms}-{position}"
            pipe.xadd(stream_key(container_id), {"t": stamp, "s": stream, "p": tag,
                                                 "l": content},
                      id=entry_id, maxlen=STREAM_MAXLEN, approximate=True)
            position += len(line)
        try:
            results = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            log.warning("log shipping for %s paused: %s", container_id, exc)
            return None
        failures = [r for r in results if isinstance(r, Exception)
                    and "equal or smaller" not in str(r)]  # already shipped: fine
        if failures:
            log.warning("log shipping for %s: %s", container_id, failures[0])
            return None
        return last_ms

    def run_forever(self) -> None:
        behind: set[str] = set()  # containers whose last shipment failed
        while True:
            ready, _, _ = select.select([self.watcher.fd], [], [], RETRY_INTERVAL)
            changed = {os.path.basename(d) for d, _ in self.watcher.read()} if ready else set()
            with self._lock:
                ids = list(self.followers) if not ready else [
                    c for c in changed | behind if c in self.followers]
            for container_id in ids:
                try:
                    shipped = self.ship(container_id)
                except Exception as exc:  # noqa: BLE001 - this thread must outlive any error
                    log.warning("log shipping for %s failed: %s", container_id, exc)
                    shipped = False
                (behind.discard if shipped else behind.add)(container_id)

    def start(self) -> None:
        threading.Thread(target=self.run_forever, name="logship", daemon=True).start()
