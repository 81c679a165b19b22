"""The processes of a container (`docker top`), read from its cgroup and /proc.

Only the pids in the container's own cgroup are listed, with host pids as
Docker shows them. `ps_args` takes the forms the Docker API is used with:
empty or `-ef` (UID PID PPID C STIME TTY TIME CMD), `aux`, and `-o` with a
list of columns (`-eo pid,comm`).
"""

import os
import pwd
import time
from dataclasses import dataclass
from pathlib import Path

from . import cgroups

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
FULL = ("uid", "pid", "ppid", "c", "stime", "tty", "time", "cmd")
AUX = ("user", "pid", "%cpu", "%mem", "vsz", "rss", "tty", "stat", "start", "time:aux",
       "command")
HEADINGS = {"uid": "UID", "user": "USER", "pid": "PID", "ppid": "PPID", "c": "C",
            "stime": "STIME", "start": "START", "tty": "TTY", "tt": "TT", "time": "TIME",
            "time:aux": "TIME", "cmd": "CMD", "command": "COMMAND", "args": "COMMAND",
            "comm": "COMMAND", "%cpu": "%CPU", "pcpu": "%CPU", "%mem": "%MEM",
            "pmem": "%MEM", "vsz": "VSZ", "rss": "RSS", "stat": "STAT", "etime": "ELAPSED",
            "pgid": "PGID", "sid": "SID", "nlwp": "NLWP"}


class TopError(Exception):
    """Bad ps_args (HTTP 400)."""

    code = "invalid"


@dataclass
class Process:
    pid: int
    stat: list[str]  # /proc/<pid>/stat fields after the command name, from field 3
    comm: str
    args: list[str]
    uid: int
    threads: int

    def field(self, number: int) -> int:
        """Field `number` of proc(5)'s /proc/<pid>/stat list (1-based)."""
        return int(self.stat[number - 3])


def top(container_id: str, ps_args: str = "") -> dict:
    """`{"Titles": [...], "Processes": [[...], ...]}`, as the Docker API answers."""
    columns = parse_ps_args(ps_args)
    processes = [p for p in (_read(pid) for pid in container_pids(container_id)) if p]
    context = _Context()
    return {"Titles": [HEADINGS[c] for c in columns],
            "Processes": [[_value(c, p, context) for c in columns] for p in processes]}


def parse_ps_args(ps_args: str) -> tuple[str, ...]:
    words = (ps_args or "").split()
    if not words or words in (["-ef"], ["-e", "-f"], ["-f"], ["-fe"]):
        return FULL
    if words in (["aux"], ["-aux"], ["au"], ["ax"]):
        return AUX
    if len(words) == 2 and words[0] in ("-o", "-eo", "o", "eo", "-e", "axo", "-axo"):
        columns = tuple(c.strip().lower() for c in words[1].split(",") if c.strip())
        unknown = [c for c in columns if c not in HEADINGS or c == "time:aux"]
        if not columns or unknown:
            raise TopError(f"unsupported ps column(s) {', '.join(unknown) or '(none)'}; "
                           f"use {', '.join(sorted(set(HEADINGS) - {'time:aux'}))}")
        return columns
    raise TopError(f"unsupported ps_args {ps_args!r}: use -ef, aux or -o col1,col2")


def container_pids(container_id: str) -> list[int]:
    for path in cgroups.for_container(container_id).paths():
        try:
            text = (path / "cgroup.procs").read_text()
        except OSError:
            continue
        return sorted(int(line) for line in text.split())
    return []


def _read(pid: int) -> Process | None:
    base = Path(f"/proc/{pid}")
    try:
        raw = (base / "stat").read_text()
        args = (base / "cmdline").read_bytes().split(b"\0")
        status = (base / "status").read_text()
    except OSError:
        return None  # exited meanwhile
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return Process(pid=pid, stat=raw[raw.rindex(")") + 2:].split(), comm=comm,
                   args=[a.decode(errors="replace") for a in args if a],
                   uid=int(values["Uid"].split()[0]), threads=int(values["Threads"]))


class _Context:
    def __init__(self):
        self.now = time.time()
        self.uptime = float(Path("/proc/uptime").read_text().split()[0])
        self.boot = self.now - self.uptime
        self.memory_kib = _mem_total()


def _mem_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def _value(column: str, process: Process, context: _Context) -> str:
    started = process.field(22) / TICKS
    cpu = (process.field(14) + process.field(15)) / TICKS
    elapsed = max(context.uptime - started, 1e-9)
    values = {
        "uid": lambda: _user(process.uid), "user": lambda: _user(process.uid),
        "pid": lambda: str(process.pid), "ppid": lambda: str(process.field(4)),
        "pgid": lambda: str(process.field(5)), "sid": lambda: str(process.field(6)),
        "c": lambda: str(min(int(cpu / elapsed * 100), 99)),
        "%cpu": lambda: f"{cpu / elapsed * 100:.1f}", "pcpu": lambda: f"{cpu / elapsed * 100:.1f}",
        "%mem": lambda: _percent_memory(process, context),
        "pmem": lambda: _percent_memory(process, context),
        "stime": lambda: _start(context.boot + started, context.now),
        "start": lambda: _start(context.boot + started, context.now),
        "tty": lambda: _tty(process.field(7)), "tt": lambda: _tty(process.field(7)),
        "time": lambda: _cpu_time(cpu), "time:aux": lambda: _aux_time(cpu),
        "etime": lambda: _elapsed(elapsed),
        "cmd": lambda: _command(process), "command": lambda: _command(process),
        "args": lambda: _command(process), "comm": lambda: process.comm,
        "vsz": lambda: str(process.field(23) // 1024),
        "rss": lambda: str(process.field(24) * PAGE // 1024),
        "stat": lambda: _state(process), "nlwp": lambda: str(process.threads),
    }
    return values[column]()


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _percent_memory(process: Process, context: _Context) -> str:
    rss_kib = process.field(24) * PAGE / 1024
    return f"{rss_kib / context.memory_kib * 100:.1f}" if context.memory_kib else "0.0"


def _start(epoch: float, now: float) -> str:
    """ps's STIME: the time today, the month and day this year, else the year."""
    started, today = time.localtime(epoch), time.localtime(now)
    if started[:3] == today[:3]:
        return time.strftime("%H:%M", started)
    if started.tm_year == today.tm_year:
        return time.strftime("%b%d", started)
    return time.strftime("%Y", started)


def _tty(tty_nr: int) -> str:
    major, minor = (tty_nr >> 8) & 0xFFF, (tty_nr & 0xFF) | ((tty_nr >> 12) & 0xFFF00)
    if tty_nr == 0:
        return "?"
    if 136 <= major <= 143:
        return f"pts/{(major - 136) * 256 + minor}"
    if major == 4:
        return f"tty{minor}"
    return "?"


def _cpu_time(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    text = time.strftime("%H:%M:%S", time.gmtime(rest))
    return f"{days}-{text}" if days else text


def _aux_time(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _elapsed(seconds: float) -> str:
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{minutes:02d}:{secs:02d}"
    if hours or days:
        text = f"{hours:02d}:{text}"
    return f"{days}-{text}" if days else text


def _command(process: Process) -> str:
    return " ".join(process.args) if process.args else f"[{process.comm}]"


def _state(process: Process) -> str:
    text = process.stat[0]
    nice = process.field(19)
    if nice < 0:
        text += "<"
    elif nice > 0:
        text += "N"
    if process.field(6) == process.pid:
        text += "s"
    if process.threads > 1:
        text += "l"
    if process.field(8) == process.field(5):
        text += "+"
    return text
