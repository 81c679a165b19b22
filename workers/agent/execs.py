"""Exec sessions on this host: the engine's process wired to a pair of Redis streams.

The control plane and the clients behind it (REST, dashboard terminal, Docker
API) may be on another machine, so an exec's stdio travels through Redis:

    berth:exec:<id>:in    what clients send: {d: bytes} | {resize: "rows cols"}
                          | {eof: 1} | {kill: signum}; read from the start, so
                          input sent before the session began is not lost
    berth:exec:<id>:out   what the process writes: {s: stdout|stderr, d: bytes},
                          then one {exit: code}; ids let a reader resume

The session reports `running` (with the pid) and `exited` (with the exit code)
to the control plane as `containers.exec_report`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading

import redis

from berth.streams import exec_input as input_key
from berth.streams import exec_output as output_key
from workers.engine.execs import ExecProcess
from workers.engine.runtime import Runtime, RuntimeError_

from .reporter import send

log = logging.getLogger("berth.agent")
CHUNK = 32768
OUTPUT_MAXLEN = 2_000  # entries (each up to CHUNK bytes) kept for late readers
INPUT_MAXLEN = 10_000
KEY_TTL = 24 * 3600  # seconds the streams stay readable after the exec ended
DRAIN_AFTER_EXIT = 2.0  # seconds to wait for output a background child keeps open


class ExecSessions:
    def __init__(self, redis_url: str, runtime: Runtime):
        self.redis = redis.Redis.from_url(redis_url)
        self.runtime = runtime
        self._running: dict[str, Session] = {}
        self._guard = threading.Lock()

    def start(self, exec_id: str, container_id: str, spec: dict) -> None:
        with self._guard:
            if exec_id in self._running:
                return  # a redelivered message: the session already runs
        try:
            process = self.runtime.exec(container_id, spec)
        except Exception as exc:  # noqa: BLE001 - every refusal must end the session visibly
            message = str(exc) if isinstance(exc, RuntimeError_) else f"exec failed: {exc}"
            with contextlib.suppress(redis.RedisError):
                self.redis.xadd(output_key(exec_id), {"exit": _code(exc), "error": message})
                self.redis.expire(output_key(exec_id), KEY_TTL)
            report(exec_id, {"state": "failed", "error": message, "exit_code": _code(exc)})
            return
        session = Session(exec_id, process, self.redis)
        with self._guard:
            self._running[exec_id] = session
        report(exec_id, {"state": "running", "pid": process.pid})
        threading.Thread(target=self._run, args=(session,), name=f"exec-{exec_id[:12]}",
                         daemon=True).start()

    def _run(self, session: Session) -> None:
        try:
            exit_code = session.run()
            report(session.exec_id, {"state": "exited", "exit_code": exit_code})
        finally:
            with self._guard:
                self._running.pop(session.exec_id, None)


def _code(exc: Exception) -> int:
    return 127 if "not found" in str(exc) or "No such file" in str(exc) else 126


def report(exec_id: str, message: dict) -> None:
    send("containers.exec_report", exec_id, message)


class Session:
    def __init__(self, exec_id: str, process: ExecProcess, client: redis.Redis):
        self.exec_id = exec_id
        self.process = process
        self.redis = client
        self.done = threading.Event()

    def run(self) -> int:
        output = threading.Thread(target=self._pump_output, daemon=True)
        feeder = threading.Thread(target=self._pump_input, daemon=True)
        output.start()
        feeder.start()
        exit_code = 255
        try:
            exit_code = self.process.wait()
            output.join(DRAIN_AFTER_EXIT)
            self.done.set()
            self._wake_input_pump()
            # Both pumps end (the input one within a block) before their fds close,
            # so no fd number is reused under them.
            output.join()
            feeder.join(DRAIN_AFTER_EXIT)  # only a child still holding stdin can keep it
            with contextlib.suppress(redis.RedisError):
                self.redis.xadd(output_key(self.exec_id), {"exit": exit_code},
                                maxlen=OUTPUT_MAXLEN, approximate=True)
                for key in (input_key(self.exec_id), output_key(self.exec_id)):
                    self.redis.expire(key, KEY_TTL)
        finally:
            self.done.set()
            self.process.close()
        return exit_code

    def _pump_output(self) -> None:
        process = self.process
        names = {process.terminal: "stdout"} if process.terminal is not None else \
            {process.stdout: "stdout", process.stderr: "stderr"}
        open_fds = dict(names)
        while open_fds and not self.done.is_set():
            try:
                ready, _, _ = select.select(list(open_fds), [], [], 0.5)
            except (OSError, ValueError):  # closed by run() after the drain timeout
                return
            for fd in ready:
                try:
                    data = os.read(fd, CHUNK)
                except OSError:  # EIO: the terminal's last holder closed it
                    data = b""
                if not data:
                    del open_fds[fd]
                    continue
                try:
                    self.redis.xadd(output_key(self.exec_id), {"s": open_fds[fd], "d": data},
                                    maxlen=OUTPUT_MAXLEN, approximate=True)
                except redis.RedisError as exc:  # keep draining: a full pipe would block it
                    log.warning("exec %s output lost: %s", self.exec_id, exc)

    def _wake_input_pump(self) -> None:
        """End the input pump's blocked read now rather than at its timeout: the exit
        entry, which clients wait for, is written only once that pump ended."""
        with contextlib.suppress(redis.RedisError):
            self.redis.xadd(input_key(self.exec_id), {"end": 1}, maxlen=INPUT_MAXLEN,
                            approximate=True)

    def _pump_input(self) -> None:
        last = "0"
        while not self.done.is_set():
            try:
                answer = self.redis.xread({input_key(self.exec_id): last}, count=100, block=500)
            except redis.RedisError as exc:
                log.warning("exec %s input: %s", self.exec_id, exc)
                self.done.wait(1)
                continue
            for _, entries in answer:
                for entry_id, fields in entries:
                    last = entry_id
                    if b"end" in fields:
                        return
                    self._apply(fields)

    def _apply(self, fields: dict) -> None:
        process = self.process
        with contextlib.suppress(OSError, ValueError):
            if b"d" in fields:
                target = process.terminal if process.terminal is not None else process.stdin
                if target is not None:
                    os.write(target, fields[b"d"])
            elif b"resize" in fields:
                rows, columns = (int(n) for n in fields[b"resize"].split())
                process.resize(rows, columns)
            elif b"eof" in fields:
                if process.terminal is not None:
                    os.write(process.terminal, b"\x04")  # end of input on a terminal
                process.close_stdin()
            elif b"kill" in fields:
                process.kill(int(fields[b"kill"]))
