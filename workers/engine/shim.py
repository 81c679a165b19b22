"""The per-container shim, forked by the zygote (zygote.py) for each start.

It runs in its own session, so the agent can stop, crash or upgrade without
touching a running container. It starts the container's first process in new
pid, mount, uts, ipc and net namespaces and writes each state change to the
container's state file.

It tells its starter how the start went with one JSON line, then execs
berth-supervisor (native/supervisor.c), which pumps the logs, waits for the
container and records its exit, in a fraction of a Python process's memory.
"""

import fcntl
import json
import os
import signal
import socket
import struct
import sys
import termios
import time
import traceback
from pathlib import Path

from . import caps, cgroups, native, rootfs, seccomp, userns, users
from . import linux as L
from .restart import RestartPolicy
from .state import (
    EXITED,
    RUNNING,
    STOP_MARKER,
    now_iso,
    process_start_time,
    write_state,
)

CONTAINER_NAMESPACES = L.CLONE_NEWNS | L.CLONE_NEWUTS | L.CLONE_NEWIPC | L.CLONE_NEWNET
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
TIOCSPTLCK, TIOCGPTN = 0x40045431, 0x80045430


def main(argv: list[str]) -> int:
    """`--resume DIR RESTARTS RAN_FOR`: berth-supervisor hands back for a restart."""
    if len(argv) != 5 or argv[1] != "--resume":
        print("usage: python -m workers.engine.shim --resume DIR RESTARTS RAN_FOR",
              file=sys.stderr)
        return 2
    return resume(Path(argv[2]).resolve(), int(argv[3]), float(argv[4]))


def resume(container_dir: Path, restarts: int, ran_for: float) -> int:
    """Carry on after berth-supervisor saw a run end that the restart policy restarts."""
    try:
        supervise(container_dir, None, resume_after=(restarts, ran_for))
    except BaseException:
        traceback.print_exc()
        write_state(container_dir, state=EXITED, finished_at=now_iso(),
                    error="shim failed while restarting; see shim.log")
        return 255
    return 0


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


def supervise(container_dir: Path, report, resume_after: tuple[int, float] | None = None) -> None:
    """Start the container's next run; berth-supervisor then takes over this process.

    The restart loop crosses exec: berth-supervisor runs `--resume` when a run
    ended and the policy wants another, and this starts it after the back-off.
    """
    config = json.loads((container_dir / "config.json").read_text())
    policy = RestartPolicy.parse(config.get("restart"))
    restarts = 0
    if resume_after is not None:
        restarts, ran_for = resume_after
        if _stopped_during(container_dir, policy.delay(restarts, ran_for)):
            write_state(container_dir, state=EXITED)
            return
        restarts += 1
    _run_once(container_dir, config, cgroups.for_container(container_dir.name), report,
              restarts)


def _run_once(container_dir: Path, config: dict, cgroup, report, restarts: int) -> None:
    """Start one run and become its supervisor; returns only when it could not start."""
    cgroup.create(cgroups.Limits.from_dict(config.get("limits")))
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    console, console_child = socket.socketpair() if config.get("tty") else (None, None)
    # With open stdin the container reads a pipe whose writing end the supervisor
    # keeps, so stdin stays open (not /dev/null's immediate end of file).
    in_r, in_w = os.pipe() if config.get("open_stdin") else (-1, -1)
    handoff, setup_error = None, ""
    if config.get("userns"):
        pid, handoff = userns.clone_init(config)
    else:
        pid = L.fork_into(L.CLONE_NEWPID)
    if pid == 0:
        _container_init(config, container_dir, cgroup, out_w, err_w, fail_w, console_child,
                        in_r, handoff)
    if handoff is not None:
        setup_error = _release(pid, config, cgroup, container_dir, handoff)
    for fd in (out_w, err_w, fail_w, in_r):
        if fd >= 0:
            os.close(fd)
    failure = _read_all(fail_r)
    failure = setup_error or failure  # the init's own report is then only the echo
    if console is not None:
        console_child.close()
        if not failure:
            # The terminal's master side replaces both pipes: a terminal has one stream.
            out_r, err_r = _receive_master(console, out_r, err_r)
        console.close()
    if failure:
        _, status = os.waitpid(pid, 0)
        cgroup.remove()
        final = write_state(container_dir, state=EXITED, pid=None, finished_at=now_iso(),
                            exit_code=os.waitstatus_to_exitcode(status), error=failure)
        if report:
            _tell(report, {"ok": False, "error": failure, "state": final})
        for fd in (out_r, err_r):
            os.close(fd)
        return
    current = write_state(container_dir, state=RUNNING, pid=pid, shim_pid=os.getpid(),
                          shim_start=process_start_time(os.getpid()), started_at=now_iso(),
                          exit_code=None, finished_at=None, error="", oom_killed=False,
                          restart_count=restarts,
                          # Where berth-supervisor holds the container's input (attach).
                          stdin_fd=in_w if in_w >= 0 else None,
                          console_fd=out_r if console is not None else None)
    if report:
        _tell(report, {"ok": True, "state": current})
    os.environ.pop("BERTH_STDIN_FD", None)
    if in_w >= 0:
        os.set_inheritable(in_w, True)  # held open across exec by berth-supervisor
        os.environ["BERTH_STDIN_FD"] = str(in_w)  # which it closes on SIGURG
    _hand_over(container_dir, config, cgroup, pid, out_r, err_r, current)


def _release(pid: int, config: dict, cgroup, container_dir: Path, handoff) -> str:
    """Let a userns init go on; on failure it is killed and this says why."""
    try:
        userns.release(pid, config, cgroup, container_dir, handoff)
        return ""
    except Exception as exc:  # noqa: BLE001 - the start fails with the reason
        os.kill(pid, signal.SIGKILL)
        return f"user namespace: {exc}"


def _receive_master(console: socket.socket, out_r: int, err_r: int) -> tuple[int, int]:
    _, fds, _, _ = socket.recv_fds(console, 16, 1)
    os.close(out_r)
    os.close(err_r)
    return fds[0], -1


def _hand_over(container_dir: Path, config: dict, cgroup, pid: int, out_r: int, err_r: int,
               current: dict) -> None:
    """Become berth-supervisor for the rest of this run: same process, a fraction of
    the memory. It hands back (`--resume`) when the restart policy wants another run."""
    policy = RestartPolicy.parse(config.get("restart"))
    rotation = config.get("log") or {}
    for fd in (out_r, err_r):
        if fd >= 0:
            os.set_inheritable(fd, True)
    os.execv(native.SUPERVISOR, [
        str(native.SUPERVISOR), str(container_dir), str(pid), str(out_r), str(err_r),
        str(rotation.get("max_size") or 0), str(rotation.get("max_files") or 1),
        policy.name, str(policy.maximum), str(current["restart_count"]),
        current["started_at"], str(current["shim_start"]), str(cgroup.oom_file()),
        ":".join(str(path) for path in cgroup.paths()), sys.executable,
    ])


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


def _container_init(config: dict, container_dir: Path, cgroup, out_w: int, err_w: int,
                    fail_w: int, console: socket.socket | None, in_r: int,
                    handoff=None) -> None:
    """Pid 1 of the new pid namespace: build the root, then exec the command.

    With a user namespace (`handoff`), the shim has joined the cgroup and made the
    root filesystem (userns.py); the network namespace was joined at the clone.
    """
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        premade = None
        if handoff is None:
            cgroup.join()
        else:
            premade = _enter_userns(config, handoff)
            container_dir = premade["dir"]
            config = userns.init_config(config, premade)
        highest_cap = caps.last_cap()
        confined = config.get("seccomp", "default") != "unconfined"
        seccomp_filter = seccomp.default_filter() if confined else None
        if handoff is None:
            L.unshare(CONTAINER_NAMESPACES & ~L.CLONE_NEWNET if _join_network(config)
                      else CONTAINER_NAMESPACES)
        rootfs.build(config, container_dir, premade)
        socket.sethostname(config["hostname"])
        # In a user namespace, the runtime's network namespace (joined at the clone)
        # is not the container root's to change; its lo is up already.
        if config.get("network_mode") != "host" and not (handoff and config.get("netns")):
            _loopback_up()
        user = users.resolve(config.get("user"))
        env = _env(config["env"])
        env.setdefault("HOME", user.home)
        if console is not None:
            _attach_terminal(console)
        else:
            os.dup2(in_r if in_r >= 0 else os.open("/dev/null", os.O_RDONLY), 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
        os.closerange(3, fail_w)
        os.closerange(fail_w + 1, 65536)
        _chdir(config["cwd"])
        confine(config, user, highest_cap, seccomp_filter)
        os.execvpe(config["args"][0], config["args"], env)
    except FileNotFoundError as exc:
        _fail(fail_w, f"exec {config['args'][0]!r}: {exc.strerror}", 127)
    except PermissionError as exc:
        _fail(fail_w, f"exec {config['args'][0]!r}: {exc.strerror}", 126)
    except BaseException as exc:  # noqa: BLE001 - anything here must reach the starter
        _fail(fail_w, f"container init: {exc}", 128)


def _enter_userns(config: dict, handoff) -> dict:
    """The new namespaces come first, so what the shim opens for us through
    /proc/<pid>/root is in our mount namespace; then wait for the shim's release."""
    L.unshare(CONTAINER_NAMESPACES & ~L.CLONE_NEWNET if config.get("netns")
              else CONTAINER_NAMESPACES)
    return userns.wait_for_release(handoff)


def confine(config: dict, user, highest_cap: int, seccomp_filter) -> None:
    """runc's order: no_new_privs, seccomp, bounding set, ids, then the process's caps."""
    keep = set(caps.DEFAULT_CAPABILITIES.values())
    if not cgroups.devices_confined():
        # No device allowlist (a v2 kernel refusing the eBPF program): a node made for
        # the host's disk or kmsg would open, so the container may not make one.
        keep.discard(caps.DEFAULT_CAPABILITIES["MKNOD"])
    if config.get("no_new_privileges"):
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp_filter is not None:
        seccomp.load(seccomp_filter)
    caps.drop_bounding(keep, highest_cap)
    os.setgroups(list(user.groups))
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    caps.set_process_caps(keep if user.uid == 0 else set())


def _attach_terminal(console: socket.socket) -> None:
    """A terminal from the container's own devpts, as its stdio and controlling tty;
    the master side goes to the shim, which logs what the container writes to it."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    terminal = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY)
    socket.send_fds(console, [b"m"], [master])
    os.close(master)
    os.setsid()
    fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(terminal, fd)


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise rootfs.RootfsError(f"working directory {cwd}: {exc.strerror}") from exc


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def _join_network(config: dict) -> bool:
    """Join the runtime's persistent network namespace (it outlives this run), or the
    host's in host mode; False: a new namespace of our own (mode none)."""
    if config.get("netns"):
        fd = os.open(config["netns"], os.O_RDONLY | os.O_CLOEXEC)
        try:
            L.setns(fd, L.CLONE_NEWNET)
        finally:
            os.close(fd)
        return True
    return config.get("network_mode") == "host"


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
