"""Tasks the agents send about images (queue ``control``); names are the protocol.

Operation reports (``images.operation_progress``/``images.operation_finished``)
live in apps/operations/tasks.py. They need no explicit queue: ``control`` is
the Celery default queue (berth/celery.py).
"""

from celery import shared_task

from apps.images import services


@shared_task(name="images.sync", ignore_result=True)
def sync(host_name: str, images: list) -> None:
    services.sync_reported_images(host_name, images)
