"""Container logs in the CRI logging format, one record a line:

    2026-11-27T22:12:41.123456789Z stdout F hello

`F` marks a full line, `P` a partial one (a long line split, or a last line
without a newline). The format is plain text, cheap to append and to parse,
and the same one Kubernetes' kubelet reads.
"""

import os
import time
from collections import deque
from dataclasses import dataclass

MAX_LINE = 16 * 1024


def rfc3339_nano(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class LogWriter:
    """Turns chunks read from the container's pipes into timestamped records.

    With `max_size`, the file is rotated when it grows past it: `container.log`
    becomes `.1`, `.1` becomes `.2`, and so on up to `max_files` files in all.
    """

    def __init__(self, path: str | os.PathLike, max_size: int | None = None,
                 max_files: int = 1):
        self.path = str(path)
        self.max_size = max_size
        self.max_files = max(1, max_files)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - lives with the shim
        self._size = self._file.tell()
        self._pending: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, chunk: bytes) -> None:
        stamp = rfc3339_nano(time.time_ns()).encode()
        data = self._pending[stream] + chunk
        records = []
        while True:
            newline = data.find(b"\n")
            if newline < 0 or newline > MAX_LINE:
                break
            records.append(_record(stamp, stream, b"F", data[:newline]))
            data = data[newline + 1:]
        while len(data) > MAX_LINE:
            records.append(_record(stamp, stream, b"P", data[:MAX_LINE]))
            data = data[MAX_LINE:]
        self._pending[stream] = data
        if records:
            self._append(records)

    def _append(self, records: list[bytes]) -> None:
        if not self.max_size:
            self._file.write(b"".join(records))
            return
        batch, batch_size = [], 0
        for record in records:
            if self._size + batch_size + len(record) > self.max_size and self._size + batch_size:
                self._file.write(b"".join(batch))
                self._rotate()
                batch, batch_size = [], 0
            batch.append(record)
            batch_size += len(record)
        self._file.write(b"".join(batch))
        self._size += batch_size

    def _rotate(self) -> None:
        self._file.close()
        for index in range(self.max_files - 1, 0, -1):
            older = f"{self.path}.{index - 1}" if index > 1 else self.path
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{index}")
        if self.max_files == 1:
            os.truncate(self.path, 0)
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        stamp = rfc3339_nano(time.time_ns()).encode()
        for stream, rest in self._pending.items():
            if rest:
                self._append([_record(stamp, stream, b"P", rest)])
        self._file.close()


def _record(stamp: bytes, stream: str, tag: bytes, content: bytes) -> bytes:
    return b"%s %s %s %s\n" % (stamp, stream.encode(), tag, content)


@dataclass(frozen=True)
class LogRecord:
    time: str
    stream: str
    partial: bool
    content: str

    def text(self, timestamps: bool = False) -> str:
        end = "" if self.partial else "\n"
        return f"{self.time} {self.content}{end}" if timestamps else f"{self.content}{end}"


def parse_line(line: str) -> LogRecord:
    stamp, stream, tag, content = line.rstrip("\n").split(" ", 3)
    return LogRecord(stamp, stream, tag == "P", content)


def log_files(path: str | os.PathLike) -> list[str]:
    """The current log and its rotated predecessors, oldest first."""
    rotated = []
    index = 1
    while os.path.exists(f"{path}.{index}"):
        rotated.append(f"{path}.{index}")
        index += 1
    return [*reversed(rotated), str(path)]


def read_records(path: str | os.PathLike, tail: int | None = None) -> list[LogRecord]:
    lines: deque[str] = deque(maxlen=tail)
    for name in log_files(path):
        try:
            with open(name, encoding="utf-8", errors="replace") as handle:
                lines.extend(handle)
        except FileNotFoundError:
            continue
    return [parse_line(line) for line in lines if line.count(" ") >= 3]


def read_text(path: str | os.PathLike, tail: int | None = None, timestamps: bool = False) -> str:
    return "".join(record.text(timestamps) for record in read_records(path, tail))
