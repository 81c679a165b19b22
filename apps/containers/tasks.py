"""Tasks the agents send about containers (queue ``control``); names are the protocol.

They need no explicit queue: ``control`` is the Celery default queue (berth/celery.py).
"""

from celery import shared_task

from apps.containers import execs, health, services


@shared_task(name="containers.report_state", ignore_result=True)
def report_state(container_id: str, report: dict) -> None:
    services.apply_report(container_id, report)


@shared_task(name="containers.exec_report", ignore_result=True)
def exec_report(exec_id: str, report: dict) -> None:
    execs.apply_report(exec_id, report)


@shared_task(name="containers.health_report", ignore_result=True)
def health_report(container_id: str, report: dict) -> None:
    health.apply_report(container_id, report)
