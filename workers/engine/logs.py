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
    """Turns chunks read from the container's pipes into timestamped records."""

    def __init__(self, path: str | os.PathLike):
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - lives as long as the shim
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
            self._file.write(b"".join(records))

    def close(self) -> None:
        stamp = rfc3339_nano(time.time_ns()).encode()
        for stream, rest in self._pending.items():
            if rest:
                self._file.write(_record(stamp, stream, b"P", rest))
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


def read_records(path: str | os.PathLike, tail: int | None = None) -> list[LogRecord]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = deque(handle, maxlen=tail) if tail is not None else list(handle)
    except FileNotFoundError:
        return []
    return [parse_line(line) for line in lines if line.count(" ") >= 3]


def read_text(path: str | os.PathLike, tail: int | None = None, timestamps: bool = False) -> str:
    return "".join(record.text(timestamps) for record in read_records(path, tail))
