"""Sends facts and container states to the control plane's queue.

Reports that cannot be sent (Redis down) stay pending and go out on the next
flush; only the newest report per container is kept, since a newer `seq`
supersedes the older ones anyway.
"""

import logging
import os
import socket
import threading

from berth import agent_auth
from berth.celery import CONTROL_QUEUE, app

log = logging.getLogger("berth.agent")


class Reporter:
    def __init__(self, host_name: str):
        self.host_name = host_name
        self._pending: dict[str, dict] = {}
        self._lock = threading.Lock()

    def container(self, container_id: str, report: dict) -> None:
        with self._lock:
            previous = self._pending.get(container_id)
            if previous is None or previous["seq"] < report["seq"]:
                self._pending[container_id] = report
        self.flush()

    def flush(self) -> None:
        with self._lock:
            pending = list(self._pending.items())
        for container_id, report in pending:
            if not send("containers.report_state", container_id, report):
                return
            with self._lock:
                if self._pending.get(container_id) is report:
                    del self._pending[container_id]

    def register(self, facts: dict) -> bool:
        return send("hosts.register", facts)

    def heartbeat(self, sent_at: float, expires: float) -> bool:
        return send("hosts.heartbeat", self.host_name, sent_at, expires=expires)


def send(task_name: str, *args, expires: float | None = None) -> bool:
    try:
        app.send_task(task_name, args=list(args), queue=CONTROL_QUEUE, expires=expires,
                      retry=False, headers=_signature(task_name, args))
    except Exception as exc:  # noqa: BLE001 - the broker's errors vary by transport
        log.warning("could not send %s: %s", task_name, exc)
        return False
    return True


def _signature(task_name: str, args) -> dict | None:
    """Headers proving which host sent this (a host that joined with a token has a key)."""
    key = os.environ.get("BERTH_HOST_KEY")
    if not key:
        return None
    name = os.environ.get("BERTH_HOST_NAME") or socket.gethostname()
    return agent_auth.headers(name, key, task_name, list(args))
