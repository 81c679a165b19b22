"""The per-container supervisor: `python -m workers.engine.shim <container dir>`.

Started by the runtime, it detaches from the agent (its own session, parent
gone), so the agent can stop, crash or upgrade without touching a running
container. It starts the container's first process in new pid, mount, uts,
ipc and net namespaces, turns its stdout and stderr into log records, and
writes each state change to the container's state file.

It tells its starter how the start went with one JSON line on stdout.
"""

import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from pathlib import Path

from . import caps, cgroups, rootfs, seccomp, users
from . import linux as L
from .logs import LogWriter
from .restart import RestartPolicy
from .state import (
    EXITED,
    RESTARTING,
    RUNNING,
    STOP_MARKER,
    now_iso,
    process_start_time,
    write_state,
)

CONTAINER_NAMESPACES = L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWNET
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


def main(argv: list[str]) -> int:
    container_dir = Path(argv[1]).resolve()
    if os.fork():
        return 0  # the starter reaps this parent at once; the shim lives on below
    return run_detached(container_dir, sys.stdout.buffer)


def run_detached(container_dir: Path, report) -> int:
    """The shim proper, in a process of its own whose parent has gone."""
    os.setsid()
    _redirect_stdio(container_dir)
    try:
        supervise(container_dir, report)
    except BaseException:
        traceback.print_exc()
        write_state(container_dir, state=EXITED, exit_code=255, finished_at=now_iso(),
                    error="shim failed; see shim.log")
        return 255
    return 0


def _redirect_stdio(container_dir: Path) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    log = os.open(container_dir / "shim.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(null, 0)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)


def supervise(container_dir: Path, report) -> None:
    """Run the container, then restart it as its policy says, until it stays down."""
    config = json.loads((container_dir / "config.json").read_text())
    policy = RestartPolicy.parse(config.get("restart"))
    cgroup = cgroups.for_container(container_dir.name)
    restarts = 0
    while True:
        ran_for, exit_code, oom_killed = _run_once(container_dir, config, cgroup, report,
                                                   restarts)
        report = None  # the starter hears about the first run only
        if exit_code is None:
            return  # it never started: nothing to restart
        ended = {"exit_code": exit_code, "pid": None, "finished_at": now_iso(),
                 "oom_killed": oom_killed}
        stopped = (container_dir / STOP_MARKER).exists()
        if stopped or not policy.wants(exit_code, restarts):
            write_state(container_dir, state=EXITED, **ended)
            return
        # Straight from running to restarting: a reader never sees a passing "exited".
        write_state(container_dir, state=RESTARTING, restart_count=restarts + 1, **ended)
        if _stopped_during(container_dir, policy.delay(restarts, ran_for)):
            write_state(container_dir, state=EXITED)
            return
        restarts += 1


def _run_once(container_dir: Path, config: dict, cgroup, report,
              restarts: int) -> tuple[float, int | None, bool]:
    """One run: (seconds it ran, exit code, OOM-killed); the exit code is None if it never
    started, in which case the exited state is already written."""
    cgroup.create(cgroups.Limits.from_dict(config.get("limits")))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = L.fork_into(L.CLONE_NEWPID)
    if pid == 0:
        _container_init(config, container_dir, cgroup, out_w, err_w, fail_w)
    for fd in (out_w, err_w, fail_w):
        os.close(fd)
    failure = _read_all(fail_r)
    if failure:
        _, status = os.waitpid(pid, 0)
        cgroup.remove()
        final = write_state(container_dir, state=EXITED, pid=None, finished_at=now_iso(),
                            exit_code=os.waitstatus_to_exitcode(status), error=failure)
        if report:
            _tell(report, {"ok": False, "error": failure, "state": final})
        for fd in (out_r, err_r):
            os.close(fd)
        return 0.0, None, False
    started = time.monotonic()
    current = write_state(container_dir, state=RUNNING, pid=pid, shim_pid=os.getpid(),
                          shim_start=process_start_time(os.getpid()), started_at=now_iso(),
                          exit_code=None, finished_at=None, error="", oom_killed=False,
                          restart_count=restarts)
    if report:
        _tell(report, {"ok": True, "state": current})
    _pump_logs(container_dir, config, out_r, err_r)
    _, status = os.waitpid(pid, 0)
    oom_killed = cgroup.oom_killed()
    cgroup.remove()
    return time.monotonic() - started, _docker_exit_code(status), oom_killed


def _stopped_during(container_dir: Path, delay: float) -> bool:
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if (container_dir / STOP_MARKER).exists():
            return True
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
    return (container_dir / STOP_MARKER).exists()


def _tell(report, message: dict) -> None:
    report.write(json.dumps(message).encode() + b"\n")
    report.flush()
    report.close()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _docker_exit_code(status: int) -> int:
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _pump_logs(container_dir: Path, config: dict, out_r: int, err_r: int) -> None:
    rotation = config.get("log") or {}
    writer = LogWriter(container_dir / "container.log", rotation.get("max_size"),
                       rotation.get("max_files", 1))
    selector = selectors.DefaultSelector()
    selector.register(out_r, selectors.EVENT_READ, "stdout")
    selector.register(err_r, selectors.EVENT_READ, "stderr")
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            chunk = os.read(key.fd, 65536)
            if chunk:
                writer.write(key.data, chunk)
            else:
                selector.unregister(key.fd)
                os.close(key.fd)
                open_streams -= 1
    writer.close()


def _container_init(config: dict, container_dir: Path, cgroup, out_w: int, err_w: int,
                    fail_w: int) -> None:
    """Pid 1 of the new pid namespace: build the root, then exec the command."""
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        cgroup.join()
        highest_cap = caps.last_cap()
        confined = config.get("seccomp", "default") != "unconfined"
        seccomp_filter = seccomp.default_filter() if confined else None
        L.unshare(CONTAINER_NAMESPACES)
        rootfs.build(config, container_dir)
        socket.sethostname(config["hostname"])
        _loopback_up()
        user = users.resolve(config.get("user"))
        env = _env(config["env"])
        env.setdefault("HOME", user.home)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        os.closerange(3, fail_w)
        os.closerange(fail_w + 1, 65536)
        _chdir(config["cwd"])
        _confine(config, user, highest_cap, seccomp_filter)
        os.execvpe(config["args"][0], config["args"], env)
    except FileNotFoundError as exc:
        _fail(fail_w, f"exec {config['args'][0]!r}: {exc.strerror}", 127)
    except PermissionError as exc:
        _fail(fail_w, f"exec {config['args'][0]!r}: {exc.strerror}", 126)
    except BaseException as exc:  # noqa: BLE001 - anything here must reach the starter
        _fail(fail_w, f"container init: {exc}", 128)


def _confine(config: dict, user, highest_cap: int, seccomp_filter) -> None:
    """runc's order: no_new_privs, seccomp, bounding set, ids, then the process's caps."""
    keep = set(caps.DEFAULT_CAPABILITIES.values())
    if config.get("no_new_privileges"):
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_filter is not None:
        seccomp.load(seccomp_filter)
    caps.drop_bounding(keep, highest_cap)
    os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    caps.set_process_caps(keep if user.uid == 0 else set())


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise rootfs.RootfsError(f"working directory {cwd}: {exc.strerror}") from exc


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def _fail(fail_w: int, message: str, code: int) -> None:
    try:
        os.write(fail_w, message.encode())
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
