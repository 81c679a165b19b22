"""Per-layer progress of a pull or push, reported at a bounded rate."""

import threading
import time

WAITING, DOWNLOADING, UPLOADING, EXISTS, MOUNTED, EXTRACTING, DONE = (
    "waiting", "downloading", "uploading", "exists", "mounted", "extracting", "done")


class Progress:
    def __init__(self, callback=None, interval: float = 0.25):
        self.callback = callback
        self.interval = interval
        self.layers: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._last_sent = 0.0

    def add(self, digest: str, total: int) -> None:
        with self._lock:
            self.layers[digest] = {"state": WAITING, "done": 0, "total": total}

    def set_state(self, digest: str, state: str) -> None:
        with self._lock:
            entry = self.layers[digest]
            entry["state"] = state
            if state in (EXISTS, MOUNTED, DONE):
                entry["done"] = entry["total"]
        self._publish(force=state in (EXISTS, MOUNTED, DONE))

    def advance(self, digest: str, count: int) -> None:
        with self._lock:
            self.layers[digest]["done"] += count
        self._publish()

    def snapshot(self) -> dict:
        with self._lock:
            layers = {digest: dict(entry) for digest, entry in self.layers.items()}
        return {"layers": layers, "done": sum(e["done"] for e in layers.values()),
                "total": sum(e["total"] for e in layers.values())}

    def _publish(self, force: bool = False) -> None:
        if self.callback is None:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_sent < self.interval:
                return
            self._last_sent = now
        self.callback(self.snapshot())
