"""Watches running containers' shims and reports each exit.

A shim writes the exit to the state file before it ends, so when its pidfd
becomes readable the file already holds the final state. The watcher knows
nothing the state files do not: after an agent restart, `adopt` rebuilds it
from them.
"""

import logging
import os
import select
import threading

from workers.engine import state as engine_state
from workers.engine.runtime import NoSuchContainer, Runtime, open_shim

from .reporter import Reporter

log = logging.getLogger("berth.agent")


class Supervisor:
    def __init__(self, runtime: Runtime, reporter: Reporter):
        self.runtime = runtime
        self.reporter = reporter
        self._watched: dict[int, str] = {}  # pidfd → container id
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll.register(self._wake_r, select.POLLIN)

    def report(self, container_id: str, current: dict) -> None:
        self.reporter.container(container_id, engine_state.as_report(current))
        if current["state"] == engine_state.RUNNING:
            self.watch(container_id, current)

    def watch(self, container_id: str, current: dict) -> None:
        pidfd = open_shim(self.runtime.existing(container_id), current)
        if pidfd is None:
            self._shim_lost(container_id)
            return
        with self._lock:
            self._watched[pidfd] = container_id
            self._poll.register(pidfd, select.POLLIN)
        os.write(self._wake_w, b"x")

    def adopt(self) -> None:
        """Report every container's state as the files tell it, and watch the live ones."""
        for container_id in self.runtime.ids():
            try:
                self.report(container_id, self.runtime.state(container_id))
            except NoSuchContainer:
                continue

    def _shim_lost(self, container_id: str) -> None:
        # The shim died without writing an exit (killed, or the host rebooted):
        # nothing supervises that container any more, so record it as ended.
        path = self.runtime.existing(container_id)
        current = engine_state.write_state(
            path, state=engine_state.EXITED, exit_code=255, pid=None,
            finished_at=engine_state.now_iso(), error="supervisor lost (host restart?)")
        self.reporter.container(container_id, engine_state.as_report(current))

    def run_forever(self) -> None:
        while True:
            for fd, _ in self._poll.poll():
                if fd == self._wake_r:
                    _drain(fd)
                else:
                    self._exited(fd)

    def _exited(self, pidfd: int) -> None:
        with self._lock:
            container_id = self._watched.pop(pidfd)
            self._poll.unregister(pidfd)
        os.close(pidfd)
        try:
            current = self.runtime.state(container_id)
        except NoSuchContainer:
            return
        if current["state"] == engine_state.RUNNING:
            self._shim_lost(container_id)
        else:
            self.reporter.container(container_id, engine_state.as_report(current))

    def start(self) -> None:
        threading.Thread(target=self.run_forever, name="supervisor", daemon=True).start()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
