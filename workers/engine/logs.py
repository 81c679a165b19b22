"""Reading container logs, which berth-supervisor (native/supervisor.c) writes in the
CRI logging format, one record a line:

    2026-11-27T22:12:41.123456789Z stdout F hello

`F` marks a full line, `P` a partial one (a line longer than 16 KiB is split,
and a last line without a newline is partial). The format is plain text, cheap
to append and to parse, and the same one Kubernetes' kubelet reads. Rotated
files are `container.log.1`, `.2`, …, newest first.
"""

import os
from collections import deque
from dataclasses import dataclass

MAX_LINE = 16 * 1024  # as in native/supervisor.c


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
