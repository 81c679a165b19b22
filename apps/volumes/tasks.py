"""Tasks the agents send about volumes (queue ``control``); names are the protocol."""

from celery import shared_task

from apps.volumes import services


@shared_task(name="volumes.removed", ignore_result=True)
def removed(host_name: str, names: list) -> None:
    services.forget_removed(host_name, names)
