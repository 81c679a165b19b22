"""A container's state file, shared by the runtime and its shim.

Every change bumps `seq`; the control plane applies a report only when its
`seq` is newer than the one it holds, so the file can be re-read and re-sent
at any time (agent restart, reconnect) without moving anything backwards.
"""

import contextlib
import json
import os
import time
from pathlib import Path

CREATED = "created"
RUNNING = "running"
EXITED = "exited"
RESTARTING = "restarting"
PAUSED = "paused"
REMOVED = "removed"
LIVE = (RUNNING, PAUSED, RESTARTING)  # a shim supervises the container
# Written by `stop`/`kill` before signalling: the restart policy then leaves the
# container down, as Docker does after an explicit stop.
STOP_MARKER = "stop-requested"
NETWORK_FILE = "network.json"  # written by network/hooks.py


def now_iso() -> str:
    ns = time.time_ns()
    seconds, nanos = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def process_start_time(pid: int) -> int | None:
    """Clock ticks after boot when `pid` started: with the pid, a process's identity."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def read_state(container_dir: Path) -> dict:
    current = json.loads((container_dir / "state.json").read_text())
    # Addresses and published ports live apart: berth-supervisor rewrites state.json.
    with contextlib.suppress(FileNotFoundError):
        current.update(json.loads((container_dir / NETWORK_FILE).read_text()))
    return current


def write_state(container_dir: Path, **changes) -> dict:
    path = container_dir / "state.json"
    try:
        current = json.loads(path.read_text())
    except FileNotFoundError:
        current = {"seq": 0, "state": None, "pid": None, "shim_pid": None, "exit_code": None,
                   "started_at": None, "finished_at": None, "error": "", "oom_killed": False,
                   "restart_count": 0}
    current.update(changes)
    current["seq"] += 1
    tmp = path.with_name(f".state.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(current))
    os.replace(tmp, path)
    return current


def as_report(state: dict) -> dict:
    keys = ("seq", "state", "pid", "exit_code", "started_at", "finished_at", "error",
            "oom_killed", "restart_count")
    report = {key: state.get(key) for key in keys}
    report.update({key: state[key] for key in ("network_mode", "networks", "ports")
                   if key in state})
    return report
