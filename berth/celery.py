"""The Celery app shared by the control plane and the host agents.

Queues: `control` is consumed by the control-plane worker (state reports,
heartbeats, periodic checks); `host.<name>` by that host's agent only;
`broadcast` is a fanout every agent hears.
"""

import os

from celery import Celery
from kombu import Exchange, Queue
from kombu.common import Broadcast

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "berth.settings")

# Agent messages are checked for their sender before they run (apps/hosts/senders.py).
app = Celery("berth", task_cls="apps.hosts.senders:AgentMessageTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

CONTROL_QUEUE = "control"
BROADCAST_QUEUE = "broadcast"


def host_queue_name(host_name: str) -> str:
    return f"host.{host_name}"


def host_queue(host_name: str) -> Queue:
    name = host_queue_name(host_name)
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


app.conf.task_queues = (
    Queue(CONTROL_QUEUE, Exchange(CONTROL_QUEUE, type="direct"), routing_key=CONTROL_QUEUE),
    Broadcast(BROADCAST_QUEUE),
)
app.conf.task_default_queue = CONTROL_QUEUE
app.conf.task_routes = {"agent.broadcast.*": {"queue": BROADCAST_QUEUE}}

# Celery's Django fix-up closes the database connection around every task unless told to
# reuse it; opening one costs more than a state report's queries. Closed every 1,000
# tasks instead (and whenever Django finds it unusable or older than CONN_MAX_AGE).
app.conf["CELERY_DB_REUSE_MAX"] = 1000
