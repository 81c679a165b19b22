"""Health verdicts the agents send (``containers.health_report``) applied to the rows.

The agent runs the probes (workers/agent/health.py); the control plane only
stores the verdict and the last probes, and broadcasts when the status changes.
"""

from __future__ import annotations

from django.db import transaction

from apps.containers.choices import LIVE_STATES, Health
from apps.containers.events import event_from_container, send_container_event
from apps.containers.models import Container

REPORTED = {Health.STARTING, Health.HEALTHY, Health.UNHEALTHY}
KEPT_PROBES = 5
OUTPUT_LIMIT = 4096


def apply_report(container_id: str, report: dict) -> bool:
    status = report.get("status") if isinstance(report, dict) else None
    if status not in REPORTED:
        return False
    detail = {
        "status": status,
        "failing_streak": int(report.get("failing_streak") or 0),
        "log": [_probe(entry) for entry in (report.get("log") or [])[-KEPT_PROBES:]
                if isinstance(entry, dict)],
    }
    with transaction.atomic():
        container = (Container.objects.select_for_update().select_related("team", "host")
                     .filter(pk=container_id, state__in=LIVE_STATES).first())
        if container is None:
            return False  # gone, or stopped meanwhile: a late verdict about a past run
        changed = container.health_status != status
        container.health_status, container.health = status, detail
        container.save(update_fields=["health_status", "health"])
        if changed:
            event = event_from_container(container)
            team_id = container.team_id
            transaction.on_commit(lambda: send_container_event(team_id, event))
    return True


def _probe(entry: dict) -> dict:
    return {"start": str(entry.get("start", "")), "end": str(entry.get("end", "")),
            "exit_code": entry.get("exit_code") if isinstance(entry.get("exit_code"), int)
            else -1, "output": str(entry.get("output", ""))[:OUTPUT_LIMIT]}
