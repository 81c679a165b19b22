"""Feeds a container's own stdin or terminal from Redis while someone is attached.

Started by `agent.container_attach` (possibly before the container starts, so
`docker attach` then `start` misses nothing); it waits for the container to
run, writes each input entry and deletes it, and ends when the container
stops. Output needs no pump: attachers follow the container's log stream.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis

from berth.streams import attach_input
from workers.engine import state as engine_state
from workers.engine.runtime import Runtime, RuntimeError_

log = logging.getLogger("berth.agent")
WAIT_FOR_START = 60.0  # seconds an attach made before `start` waits for the container
BLOCK_MS = 1000


class AttachPumps:
    def __init__(self, redis_url: str, runtime: Runtime):
        self.redis = redis.Redis.from_url(redis_url)
        self.runtime = runtime
        self._running: set[str] = set()
        self._guard = threading.Lock()

    def attach(self, container_id: str) -> None:
        with self._guard:
            if container_id in self._running:
                return
            self._running.add(container_id)
        threading.Thread(target=self._pump, args=(container_id,), daemon=True,
                         name=f"attach-{container_id[:12]}").start()

    def _pump(self, container_id: str) -> None:
        try:
            target = self._wait_for_input(container_id)
            if target is not None:
                with contextlib.closing(target):
                    self._feed(container_id, target)
        except Exception:  # noqa: BLE001 - a broken attach must not take the agent down
            log.exception("attach to %s failed", container_id)
        finally:
            with self._guard:
                self._running.discard(container_id)

    def _wait_for_input(self, container_id: str):
        deadline = time.monotonic() + WAIT_FOR_START
        while time.monotonic() < deadline:
            if self._state(container_id) in (engine_state.RUNNING, engine_state.PAUSED):
                try:
                    return self.runtime.attach_input(container_id)
                except RuntimeError_ as exc:
                    log.info("attach to %s: %s", container_id, exc)
                    return None
            time.sleep(0.05)
        return None

    def _feed(self, container_id: str, target) -> None:
        key = attach_input(container_id)
        while self._state(container_id) in (engine_state.RUNNING, engine_state.PAUSED):
            answer = self.redis.xread({key: "0"}, count=100, block=BLOCK_MS)
            for _, entries in answer:
                for entry_id, fields in entries:
                    self.redis.xdel(key, entry_id)
                    if b"eof" in fields and not target.terminal:
                        # Our duplicate goes first: the container sees end of file
                        # once the supervisor has dropped the last writing end too.
                        target.close()
                        with contextlib.suppress(RuntimeError_):
                            self.runtime.close_stdin(container_id)
                        return
                    with contextlib.suppress(OSError, ValueError):
                        if b"d" in fields:
                            target.write(fields[b"d"])
                        elif b"resize" in fields:
                            rows, columns = (int(n) for n in fields[b"resize"].split())
                            target.resize(rows, columns)

    def _state(self, container_id: str) -> str | None:
        try:
            return self.runtime.state(container_id)["state"]
        except RuntimeError_:
            return None
