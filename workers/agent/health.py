"""Runs each running container's health check on this host and reports the verdict.

The supervisor tells the monitor about every run that starts; one thread per
checked run probes at the check's interval until the run ends. The verdict is
kept in the container's directory (so a restarted agent continues it) and
reported to the control plane after each probe as `containers.health_report`.
Like Docker, an unhealthy container is only reported, never restarted: its
restart policy is about exits.
"""

from __future__ import annotations

import logging
import threading
import time

from workers.engine import health
from workers.engine import state as engine_state
from workers.engine.runtime import Runtime, RuntimeError_

from .reporter import send

log = logging.getLogger("berth.agent")


class HealthMonitor:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self._runs: dict[str, str] = {}  # container id → started_at of the run checked
        self._guard = threading.Lock()

    def notice(self, container_id: str, current: dict) -> None:
        """A state report went out; a new run with a health check gets a checker."""
        run = current.get("started_at")
        if current.get("state") != engine_state.RUNNING or not run:
            return
        with self._guard:
            if self._runs.get(container_id) == run:
                return
            self._runs[container_id] = run
        try:
            check = health.HealthCheck.from_dict(self.runtime.config(container_id).get(
                "healthcheck"))
        except RuntimeError_:
            return
        if check is None:
            return
        threading.Thread(target=self._check_run, args=(container_id, run, check),
                         daemon=True, name=f"health-{container_id[:12]}").start()

    def _check_run(self, container_id: str, run: str, check: health.HealthCheck) -> None:
        try:
            self._probe_run(container_id, run, check)
        except Exception:  # noqa: BLE001 - a broken check must be visible, not silent
            log.exception("health check of %s stopped", container_id)
        finally:
            with self._guard:
                if self._runs.get(container_id) == run:
                    del self._runs[container_id]

    def _probe_run(self, container_id: str, run: str, check: health.HealthCheck) -> None:
        path = self.runtime.existing(container_id)
        verdict = health.Health.load(path)
        if verdict is None or verdict.run != run:
            verdict = health.Health(run=run)
            verdict.save(path)
            report(container_id, verdict, changed=True)
        began = time.monotonic()
        while self._same_run(container_id, run):
            time.sleep(check.interval)
            current = self._state(container_id)
            if current.get("started_at") != run or current.get("state") not in (
                    engine_state.RUNNING, engine_state.PAUSED):
                break
            if current["state"] == engine_state.PAUSED:
                continue  # a frozen container cannot answer; Docker skips it too
            probe = health.probe(self.runtime, container_id, check)
            if not self._same_run(container_id, run):
                break  # stopped while probing: the probe's failure says nothing
            in_start_period = time.monotonic() - began < check.start_period
            changed = verdict.record(probe, check, in_start_period)
            verdict.save(path)
            report(container_id, verdict, changed)

    def _same_run(self, container_id: str, run: str) -> bool:
        current = self._state(container_id)
        return current.get("started_at") == run and current.get("state") in (
            engine_state.RUNNING, engine_state.PAUSED)

    def _state(self, container_id: str) -> dict:
        try:
            return self.runtime.state(container_id)
        except RuntimeError_:
            return {}


def report(container_id: str, verdict: health.Health, changed: bool) -> None:
    send("containers.health_report", container_id,
         {"status": verdict.status, "failing_streak": verdict.failing_streak,
          "log": verdict.log, "run": verdict.run, "changed": changed})
