"""Health checks: the probe command, its schedule, and the verdict Docker would give.

The configuration comes from the image's Healthcheck (durations in
nanoseconds) overridden field by field by the container's own (seconds).
A probe is an exec in the container; the verdict goes from `starting` to
`healthy` on the first success and to `unhealthy` after `retries` failures
in a row — failures inside the start period do not count. The last few
probes (output capped) are kept, as `docker inspect` shows them.
"""

from __future__ import annotations

import json
import os
import select
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .state import now_iso

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETRIES = 3
MIN_DURATION, MAX_DURATION = 0.01, 7 * 86400.0
KEPT_PROBES = 5
OUTPUT_LIMIT = 4096
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
STATE_FILE = "health.json"


class HealthError(Exception):
    pass


@dataclass(frozen=True)
class HealthCheck:
    args: list[str]
    interval: float = DEFAULT_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    start_period: float = 0.0

    @classmethod
    def merged(cls, image: dict | None, given: dict | None) -> HealthCheck | None:
        """The check a container runs, or None (no check, or ``NONE``)."""
        image, given = image or {}, given or {}
        test = given.get("test") or image.get("Test")
        if not test or test[0] == "NONE":
            return None
        return cls(
            args=_command(test),
            interval=_seconds(given.get("interval"), image.get("Interval"), DEFAULT_INTERVAL),
            timeout=_seconds(given.get("timeout"), image.get("Timeout"), DEFAULT_TIMEOUT),
            retries=max(1, int(given.get("retries") or image.get("Retries") or DEFAULT_RETRIES)),
            start_period=_seconds(given.get("start_period"), image.get("StartPeriod"), 0.0),
        )

    @classmethod
    def from_dict(cls, data: dict | None) -> HealthCheck | None:
        return cls(**data) if data else None


def _command(test: list) -> list[str]:
    kind, rest = test[0], [str(part) for part in test[1:]]
    if kind == "CMD" and rest:
        return rest
    if kind == "CMD-SHELL" and len(rest) == 1:
        return ["/bin/sh", "-c", rest[0]]
    raise HealthError(f"health check test must be NONE, CMD args… or CMD-SHELL cmd: {test!r}")


def _seconds(given, image_ns, default: float) -> float:
    if given:
        seconds = float(given)
    elif image_ns:
        seconds = int(image_ns) / 1e9
    else:
        return default
    if not MIN_DURATION <= seconds <= MAX_DURATION:
        raise HealthError(f"health check durations must be {MIN_DURATION}s to {MAX_DURATION}s")
    return seconds


@dataclass
class Probe:
    start: str
    end: str
    exit_code: int
    output: str


@dataclass
class Health:
    run: str = ""  # the started_at of the run this verdict is about
    status: str = STARTING
    failing_streak: int = 0
    log: list[dict] = field(default_factory=list)

    def record(self, probe: Probe, check: HealthCheck, in_start_period: bool) -> bool:
        """Apply one probe; True when the status changed."""
        before = self.status
        self.log = (self.log + [asdict(probe)])[-KEPT_PROBES:]
        if probe.exit_code == 0:
            self.status, self.failing_streak = HEALTHY, 0
        elif not (in_start_period and self.status == STARTING):
            self.failing_streak += 1
            if self.failing_streak >= check.retries:
                self.status = UNHEALTHY
        return self.status != before

    def save(self, container_dir: Path) -> None:
        tmp = container_dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, container_dir / STATE_FILE)

    @classmethod
    def load(cls, container_dir: Path) -> Health | None:
        try:
            return cls(**json.loads((container_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def probe(runtime, container_id: str, check: HealthCheck) -> Probe:
    """Run the check once in the container; a timeout kills it and counts as failure."""
    start = now_iso()
    try:
        process = runtime.exec(container_id, {"args": check.args})
    except Exception as exc:  # noqa: BLE001 - the runtime's refusal is the probe's output
        return Probe(start, now_iso(), -1, str(exc)[:OUTPUT_LIMIT])
    output = bytearray()
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill()

    timer = threading.Timer(check.timeout, expire)
    timer.start()
    try:
        _collect(process, output, time.monotonic() + check.timeout + 1)
        exit_code = process.wait()
    finally:
        timer.cancel()
        process.close()
    if timed_out.is_set():
        return Probe(start, now_iso(), -1, f"Health check exceeded timeout ({check.timeout:g}s)")
    return Probe(start, now_iso(), exit_code, output[:OUTPUT_LIMIT].decode(errors="replace"))


def _collect(process, output: bytearray, deadline: float) -> None:
    open_fds = [process.stdout, process.stderr]
    while open_fds and time.monotonic() < deadline:
        ready, _, _ = select.select(open_fds, [], [], max(0.0, deadline - time.monotonic()))
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.remove(fd)
            elif len(output) < OUTPUT_LIMIT:
                output.extend(data)
