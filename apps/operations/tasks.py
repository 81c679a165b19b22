"""Tasks about operations on queue ``control``; the ``images.*`` names are the protocol.

The agent reports an operation's progress and end under ``images.*`` names
(docs/agent-protocol.md); ``operations.cleanup_transfers`` runs from Celery
beat (berth/settings.py).
"""

from celery import shared_task

from apps.operations import services


@shared_task(name="images.operation_progress", ignore_result=True)
def operation_progress(operation_id: str, progress: dict) -> None:
    services.record_progress(operation_id, progress)


@shared_task(name="images.operation_finished", ignore_result=True)
def operation_finished(operation_id: str, result: dict) -> None:
    services.finish_operation(operation_id, result)


@shared_task(name="operations.cleanup_transfers", ignore_result=True)
def cleanup_transfers() -> int:
    return services.cleanup_transfers()
