"""Runs this host's agent: the node's threads plus a Celery worker on `host.<name>`."""

import logging

from berth.celery import BROADCAST_QUEUE, app, host_queue_name

from . import file_tasks, network_tasks, tasks, volume_tasks  # noqa: F401 - registers tasks
from .config import AgentConfig
from .node import start_node


def run(config: AgentConfig, loglevel: str = "INFO") -> None:
    logging.basicConfig(level=loglevel, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    start_node(config)
    worker = app.Worker(
        hostname=f"agent@{config.host_name}",
        queues=[host_queue_name(config.host_name), BROADCAST_QUEUE],
        pool="threads",
        concurrency=config.concurrency,
        loglevel=loglevel,
        without_mingle=True,
        without_gossip=True,
    )
    worker.start()
