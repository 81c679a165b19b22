"""Processes started inside a running container (`docker exec`).

The zygote forks a child for each exec. That child joins the container's
cgroup and, through the init's pidfd, all of its namespaces in one setns call
(so a recycled pid cannot send it elsewhere), then forks the process that is
confined exactly as the container's init was — same bounding set, seccomp
filter and no_new_privs — and execs the command. The child stays outside the
container's pid namespace as the exec's waiter: it tells the caller the pid,
then the exit code, over the connection the request came on.

Both halves are made non-dumpable before entering: while the exec is still
the host's Python, another process in the container must not be able to open
its /proc/<pid>/exe (the CVE-2019-5736 class).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import termios
from dataclasses import dataclass
from pathlib import Path

from . import caps, cgroups, seccomp, shim, state, users
from . import linux as L

ENTER = L.CLONE_NEWNS | L.CLONE_NEWPID | L.CLONE_NEWIPC | L.CLONE_NEWUTS | L.CLONE_NEWNET
PR_SET_DUMPABLE = 4
TIOCGPTPEER = 0x5441
TIOCSPTLCK = 0x40045431
MAX_ARGS = 4096
MAX_SPEC_BYTES = 128 * 1024


class ExecError(Exception):
    pass


@dataclass(frozen=True)
class ExecSpec:
    args: list[str]
    env: list[str]
    user: str
    cwd: str
    tty: bool
    stdin: bool

    @classmethod
    def parse(cls, data: dict) -> ExecSpec:
        args = data.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            raise ExecError("exec needs a command: a non-empty list of strings")
        if len(args) > MAX_ARGS or any("\0" in a for a in args):
            raise ExecError("invalid exec command")
        if len(json.dumps(data)) > MAX_SPEC_BYTES:
            raise ExecError(f"exec command and env are larger than {MAX_SPEC_BYTES} bytes")
        env = data.get("env") or []
        if not all(isinstance(e, str) and "=" in e and "\0" not in e for e in env):
            raise ExecError("exec env entries must be NAME=value strings")
        cwd = data.get("cwd") or ""
        if cwd and not cwd.startswith("/"):
            raise ExecError(f"exec working directory {cwd!r} must be absolute")
        return cls(args=list(args), env=list(env), user=str(data.get("user") or ""),
                   cwd=cwd, tty=bool(data.get("tty")), stdin=bool(data.get("stdin")))

    def as_dict(self) -> dict:
        return {"args": self.args, "env": self.env, "user": self.user, "cwd": self.cwd,
                "tty": self.tty, "stdin": self.stdin}


class ExecProcess:
    """The caller's side of a started exec: its stdio fds and the waiter's channel.

    With a terminal, `terminal` is the master side (read output, write input);
    without, `stdin` (if asked for), `stdout` and `stderr` are pipe ends.
    Signals go through a pidfd: the pid alone may name another process once
    the waiter has reaped the exec.
    """

    def __init__(self, pid: int, pidfd: int, channel: _Channel, *, terminal: int | None = None,
                 stdin: int | None = None, stdout: int | None = None,
                 stderr: int | None = None):
        self.pid = pid
        self.pidfd = pidfd
        self.terminal = terminal
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._channel = channel
        self.exit_code: int | None = None

    def wait(self) -> int:
        """Block until the process ends; its exit code (128+n when killed by signal n)."""
        if self.exit_code is None:
            line = self._channel.line()
            self.exit_code = int(json.loads(line)["exit_code"]) if line else 255
        return self.exit_code

    def kill(self, signum: int = signal.SIGKILL) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self.pidfd, signum)

    def resize(self, rows: int, columns: int) -> None:
        if self.terminal is not None:
            fcntl.ioctl(self.terminal, termios.TIOCSWINSZ,
                        struct.pack("HHHH", rows, columns, 0, 0))

    def close_stdin(self) -> None:
        if self.stdin is not None:
            os.close(self.stdin)
            self.stdin = None

    def close(self) -> None:
        for name in ("terminal", "stdin", "stdout", "stderr", "pidfd"):
            fd = getattr(self, name)
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, None)
        self._channel.close()


class _Channel:
    """JSON lines from the waiter; the first may carry an fd (SCM_RIGHTS)."""

    def __init__(self, connection: socket.socket):
        self.connection = connection
        self.buffer = b""

    def first(self) -> tuple[dict, list[int]]:
        data, fds, _, _ = socket.recv_fds(self.connection, 65536, 1)
        self.buffer = data
        line = self.line()
        return json.loads(line or b'{"ok": false}'), fds

    def line(self) -> bytes:
        while b"\n" not in self.buffer:
            more = self.connection.recv(65536)
            if not more:
                break
            self.buffer += more
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    def close(self) -> None:
        self.connection.close()


def request(connection: socket.socket, container_dir: Path, spec: ExecSpec) -> ExecProcess:
    """Ask the zygote (on `connection`) to start `spec`; the caller keeps the fds."""
    mine: list[int] = []
    theirs: list[int] = []
    console = None
    try:
        if spec.tty:
            console, console_child = socket.socketpair()
            theirs.append(console_child.detach())
        else:
            for wanted, child_reads in ((spec.stdin, True), (True, False), (True, False)):
                if not wanted:
                    mine.append(-1)
                    continue
                read_end, write_end = os.pipe2(os.O_CLOEXEC)
                mine.append(write_end if child_reads else read_end)
                theirs.append(read_end if child_reads else write_end)
        message = json.dumps({"exec": str(container_dir), "spec": spec.as_dict()}).encode()
        # One sendmsg may be cut short; the fds ride on the first byte, the rest follows.
        socket.send_fds(connection, [message[:1]], theirs)
        connection.sendall(message[1:] + b"\n")
        for fd in theirs:
            os.close(fd)
        theirs = []
        channel = _Channel(connection)
        reply, received = channel.first()
        if not reply.get("ok"):
            for fd in received:
                os.close(fd)
            raise ExecError(reply.get("error") or "the exec did not start")
        pidfd = received[0] if received else None
        if console is not None:
            _, fds, _, _ = socket.recv_fds(console, 16, 1)
            return ExecProcess(reply["pid"], pidfd, channel, terminal=fds[0])
        stdin = mine[0] if mine[0] >= 0 else None
        return ExecProcess(reply["pid"], pidfd, channel, stdin=stdin, stdout=mine[1],
                           stderr=mine[2])
    except BaseException:
        for fd in mine + theirs:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        raise
    finally:
        if console is not None:
            console.close()


# The zygote's side, in the forked child: never returns.

def serve(connection: socket.socket, container_dir: Path, spec_data: dict,
          fds: list[int]) -> None:
    code = 0
    try:
        _waiter(connection, container_dir, ExecSpec.parse(spec_data), fds)
    except BaseException as exc:  # noqa: BLE001 - every failure must reach the caller
        _send(connection, {"ok": False, "error": str(exc)})
        code = 1
    finally:
        os._exit(code)


def _waiter(connection: socket.socket, container_dir: Path, spec: ExecSpec,
            fds: list[int]) -> None:
    config = json.loads((container_dir / "config.json").read_text())
    pidfd = _init_pidfd(container_dir)
    highest_cap = caps.last_cap()
    confined = config.get("seccomp", "default") != "unconfined"
    seccomp_filter = seccomp.default_filter() if confined else None
    if not spec.stdin and not spec.tty:
        # The host's /dev/null: the container's could be a FIFO that hangs the exec.
        fds = [os.open("/dev/null", os.O_RDONLY), *fds]
    L.prctl(PR_SET_DUMPABLE, 0)
    cgroups.for_container(container_dir.name).join()
    # A user namespace is entered with the rest, before its ids mean anything to us:
    # confine() then takes the user's ids as the namespace maps them.
    L.setns(pidfd, ENTER | L.CLONE_NEWUSER if config.get("userns") else ENTER)
    os.close(pidfd)
    fail_r, fail_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        _exec_child(config, spec, fds, fail_w, highest_cap, seccomp_filter)
    os.close(fail_w)
    for fd in fds:
        os.close(fd)
    failure = shim._read_all(fail_r)
    if failure:
        _, status = os.waitpid(pid, 0)
        raise ExecError(failure)
    # Taken before the child can be reaped, so it always names this exec.
    child = os.pidfd_open(pid)
    socket.send_fds(connection, [json.dumps({"ok": True, "pid": pid}).encode() + b"\n"],
                    [child])
    os.close(child)
    _, status = os.waitpid(pid, 0)
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    _send(connection, {"exit_code": exit_code})


def _init_pidfd(container_dir: Path) -> int:
    """A pidfd of the container's init, checked to be that init and not a recycled pid."""
    current = state.read_state(container_dir)
    if current.get("state") == state.PAUSED:
        raise ExecError(f"container {container_dir.name} is paused, unpause it first")
    if current.get("state") not in (state.RUNNING,) or not current.get("pid"):
        raise ExecError(f"container {container_dir.name} is not running")
    pidfd = L.pidfd_open(current["pid"])
    if pidfd is None or _parent(current["pid"]) != current.get("shim_pid") or \
            state.process_start_time(current["shim_pid"]) != current.get("shim_start"):
        if pidfd is not None:
            os.close(pidfd)
        raise ExecError(f"container {container_dir.name} is not running")
    return pidfd


def _parent(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rsplit(")", 1)[1].split()[1])


def _exec_child(config: dict, spec: ExecSpec, fds: list[int], fail_w: int, highest_cap: int,
                seccomp_filter) -> None:
    """Inside every namespace of the container: set up stdio, confine, exec."""
    command = spec.args[0]
    try:
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        user = users.resolve(spec.user or config.get("user"))
        if spec.tty:
            _terminal(socket.socket(fileno=fds[0]), user.uid)
        else:
            _pipes(spec, fds)
        env = shim._env(config["env"])
        env.update(shim._env(spec.env))
        env.setdefault("HOME", user.home)
        if spec.tty:
            env.setdefault("TERM", "xterm")
        os.closerange(3, fail_w)
        os.closerange(fail_w + 1, 65536)
        shim._chdir(spec.cwd or config["cwd"])
        shim.confine(config, user, highest_cap, seccomp_filter)
        os.execvpe(command, spec.args, env)
    except FileNotFoundError as exc:
        reason = exc.strerror if "/" in command else "executable file not found in $PATH"
        shim._fail(fail_w, f'exec: "{command}": {reason}', 127)
    except PermissionError as exc:
        shim._fail(fail_w, f'exec: "{command}": {exc.strerror}', 126)
    except BaseException as exc:  # noqa: BLE001 - anything here must reach the waiter
        shim._fail(fail_w, f"exec: {exc}", 126)


def _pipes(spec: ExecSpec, fds: list[int]) -> None:
    received = iter(fds)  # stdin (a pipe, or the host's /dev/null), stdout, stderr
    os.dup2(next(received), 0)
    os.dup2(next(received), 1)
    os.dup2(next(received), 2)


def _terminal(console: socket.socket, uid: int) -> None:
    """A terminal from the container's own devpts; the master goes back to the caller.

    The path is the container's, so it is opened without following links and
    must be a character device (the container could otherwise hand over a FIFO).
    """
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if not stat.S_ISCHR(os.fstat(master).st_mode):
        raise ExecError("/dev/pts/ptmx in the container is not a terminal multiplexer")
    fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
    terminal = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY)
    os.fchown(terminal, uid, -1)  # the user's own terminal, so programs can reopen it
    socket.send_fds(console, [b"m"], [master])
    os.close(master)
    console.close()
    os.setsid()
    fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(terminal, fd)
    os.close(terminal)


def _send(connection: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        connection.sendall(json.dumps(message).encode() + b"\n")
