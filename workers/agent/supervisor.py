"""Watches containers' state files and shims, and reports every change.

Each state change is an atomic rename of state.json, seen through inotify;
a shim's pidfd becoming readable tells that it ended, which catches a shim
killed before it could write. The watcher knows nothing the state files do
not: after an agent restart, `adopt` rebuilds it from them.
"""

import logging
import os
import select
import threading

from workers.engine import cgroups
from workers.engine import state as engine_state
from workers.engine.inotify import Watcher
from workers.engine.restart import RestartPolicy
from workers.engine.runtime import NoSuchContainer, Runtime, RuntimeError_, open_shim

from .reporter import Reporter

log = logging.getLogger("berth.agent")
RUN_ENDED = (engine_state.EXITED, engine_state.RESTARTING)


class Supervisor:
    def __init__(self, runtime: Runtime, reporter: Reporter, shipper=None):
        self.runtime = runtime
        self.reporter = reporter
        self.shipper = shipper
        self._watched: dict[int, str] = {}  # pidfd → container id
        self._lock = threading.Lock()
        self._poll = select.poll()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll.register(self._wake_r, select.POLLIN)
        self._files = Watcher()
        self._poll.register(self._files.fd, select.POLLIN)
        self._seen: dict[str, int] = {}  # container id → last seq reported
        self.health = None  # a HealthMonitor, told of every run that starts

    def report(self, container_id: str, current: dict) -> None:
        with self._lock:
            if self._seen.get(container_id, -1) >= current["seq"]:
                return
            self._seen[container_id] = current["seq"]
        if self.shipper is not None and current["state"] in RUN_ENDED:
            # The shim wrote the exit after the last output reached its file: shipped
            # now, every line is in the stream before anyone learns of the exit, and
            # an attached client can stop reading the moment it does.
            self.shipper.ship(container_id)
        self.reporter.container(container_id, engine_state.as_report(current))
        if self.health is not None:
            self.health.notice(container_id, current)
        if current["state"] == engine_state.REMOVED:
            self._seen.pop(container_id, None)

    def track(self, container_id: str) -> None:
        """Follow a container from now on: its state file, and its shim while it lives."""
        path = self.runtime.existing(container_id)
        self._files.add(str(path))
        if self.shipper is not None:
            self.shipper.follow(container_id)
        current = self.runtime.state(container_id)
        # The pidfd first: reporting takes a round trip to Redis, and a short
        # container may end meanwhile; its shim then writes the exit itself.
        pidfd = open_shim(path, current) if current["state"] in engine_state.LIVE else None
        self.report(container_id, current)
        if current["state"] not in engine_state.LIVE:
            return
        if pidfd is None:
            self._shim_lost(container_id, current)
            return
        with self._lock:
            if container_id in self._watched.values():
                os.close(pidfd)
                return
            self._watched[pidfd] = container_id
            self._poll.register(pidfd, select.POLLIN)
        os.write(self._wake_w, b"x")

    def adopt(self) -> None:
        """Report every container's state as the files tell it, and follow each one."""
        for container_id in self.runtime.ids():
            try:
                self.track(container_id)
            except NoSuchContainer:
                continue

    def resend_all(self) -> None:
        with self._lock:
            self._seen.clear()
        self.adopt()

    def _shim_lost(self, container_id: str, seen: dict) -> None:
        # The shim died without writing an exit (killed, or the host rebooted):
        # nothing supervises that container any more, so record it as ended,
        # then bring it back if its restart policy says so. Only if the state
        # is still the one that named the dead shim: a shim that wrote its own
        # exit meanwhile has said the truth already.
        path = self.runtime.existing(container_id)
        if self.runtime.state(container_id)["seq"] != seen["seq"]:
            self.report(container_id, self.runtime.state(container_id))
            return
        current = engine_state.write_state(
            path, state=engine_state.EXITED, exit_code=255, pid=None,
            finished_at=engine_state.now_iso(), error="supervisor lost (host restart?)")
        # Its supervisor would have removed the cgroups; do it if they are empty.
        cgroups.for_container(container_id).remove(attempts=1)
        self.report(container_id, current)
        policy = RestartPolicy.parse(self.runtime.config(container_id).get("restart"))
        stopped = (path / engine_state.STOP_MARKER).exists()
        if policy.brings_back_after_reboot(stopped):
            try:
                self.runtime.start(container_id)
            except RuntimeError_ as exc:
                log.warning("could not bring back %s: %s", container_id, exc)
                return
            self.track(container_id)

    def run_forever(self) -> None:
        while True:
            for fd, _ in self._poll.poll():
                if fd == self._wake_r:
                    _drain(fd)
                elif fd == self._files.fd:
                    self._files_changed()
                else:
                    self._exited(fd)

    def _files_changed(self) -> None:
        for directory, name in self._files.read():
            if name != "state.json":
                continue
            container_id = os.path.basename(directory)
            try:
                self.report(container_id, self.runtime.state(container_id))
            except (NoSuchContainer, FileNotFoundError, ValueError):
                self._files.forget(directory)

    def _exited(self, pidfd: int) -> None:
        with self._lock:
            container_id = self._watched.pop(pidfd)
            self._poll.unregister(pidfd)
        os.close(pidfd)
        try:
            current = self.runtime.state(container_id)
        except NoSuchContainer:
            return
        if current["state"] in engine_state.LIVE:
            self._shim_lost(container_id, current)
        else:
            self.report(container_id, current)

    def start(self) -> None:
        threading.Thread(target=self.run_forever, name="supervisor", daemon=True).start()


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
