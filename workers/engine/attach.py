"""The input side of a running container's own stdio (`docker attach`).

berth-supervisor holds the writing end of the container's stdin pipe (open
stdin) or its terminal's master side (tty); state.json records which fd. An
attacher takes a duplicate of that fd with pidfd_getfd, after checking the
pid is still that supervisor. Output needs nothing here: it is the log.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import stat
import struct
import termios
from pathlib import Path

from . import linux as L
from . import state


class AttachError(Exception):
    pass


class ContainerInput:
    def __init__(self, fd: int, terminal: bool):
        self.fd = fd
        self.terminal = terminal

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def resize(self, rows: int, columns: int) -> None:
        if self.terminal:
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


def open_input(container_dir: Path) -> ContainerInput:
    current = state.read_state(container_dir)
    if current.get("state") not in (state.RUNNING, state.PAUSED):
        raise AttachError(f"container {container_dir.name} is not running")
    number = current.get("console_fd")
    terminal = number is not None
    if not terminal:
        number = current.get("stdin_fd")
    if number is None:
        raise AttachError(f"container {container_dir.name} has no open stdin and no terminal")
    shim_pid = current.get("shim_pid")
    pidfd = L.pidfd_open(shim_pid) if shim_pid else None
    if pidfd is None:
        raise AttachError(f"container {container_dir.name} is not running")
    try:
        if state.process_start_time(shim_pid) != current.get("shim_start"):
            raise AttachError(f"container {container_dir.name} is not running")
        fd = L.pidfd_getfd(pidfd, number)
    finally:
        os.close(pidfd)
    # Around a restart the supervisor may already hold something else under that
    # number: the fd must be of the right kind, and the run the same afterwards.
    kind = os.fstat(fd).st_mode
    same_run = state.read_state(container_dir).get("started_at") == current.get("started_at")
    if not same_run or not (stat.S_ISCHR(kind) if terminal else stat.S_ISFIFO(kind)):
        os.close(fd)
        raise AttachError(f"container {container_dir.name} is restarting; attach again")
    return ContainerInput(fd, terminal)


def close_stdin(container_dir: Path) -> None:
    """End the container's open stdin: berth-supervisor drops the last writing end."""
    current = state.read_state(container_dir)
    shim_pid = current.get("shim_pid")
    pidfd = L.pidfd_open(shim_pid) if shim_pid and current.get("stdin_fd") is not None else None
    if pidfd is None:
        raise AttachError(f"container {container_dir.name} has no open stdin to close")
    try:
        if state.process_start_time(shim_pid) != current.get("shim_start"):
            raise AttachError(f"container {container_dir.name} is not running")
        signal.pidfd_send_signal(pidfd, signal.SIGURG)
    finally:
        os.close(pidfd)
