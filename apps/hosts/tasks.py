"""Tasks the agents send to the control plane (queue ``control``); names are the protocol.

They need no explicit queue: ``control`` is the Celery default queue (berth/celery.py).
"""

from celery import shared_task

from apps.hosts import services


@shared_task(name="hosts.register", ignore_result=True)
def register(facts: dict) -> None:
    services.register_host(facts)


@shared_task(name="hosts.heartbeat", ignore_result=True)
def heartbeat(name: str, sent_at: float) -> None:
    services.record_heartbeat(name, sent_at)


@shared_task(name="hosts.mark_offline", ignore_result=True)
def mark_offline() -> int:
    return services.mark_offline()
