"""Which host sent an agent message, and whether it may speak about what it names.

Every task an agent sends to ``control`` is listed in ``SUBJECTS`` with a
function naming the host the message is about. A message signed by a joined
host (``berth.agent_auth``) is accepted only when the signature is right and
the subject is the sender itself. An unsigned message is accepted only about a
host that never joined with a token (a ``make up`` agent on the shared Redis
URL), so a joined host's credentials cannot speak for it either way.

Rejected messages are dropped with a warning; the task does not run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from celery import Task

from berth import agent_auth

log = logging.getLogger(__name__)


def _host_named(name):
    from apps.hosts.models import Host

    return Host.objects.filter(name=name).first() if isinstance(name, str) else None


def _host_of_container(container_id):
    from apps.containers.models import Container

    row = Container.objects.filter(pk=str(container_id)).select_related("host").first()
    return row.host if row is not None else None


def _host_of_exec(exec_id):
    from apps.containers.models import Exec

    row = Exec.objects.filter(pk=str(exec_id)).select_related("container__host").first()
    return row.container.host if row is not None else None


def _host_of_operation(operation_id):
    from apps.operations.models import Operation

    row = Operation.objects.filter(pk=str(operation_id)).select_related("host").first()
    return row.host if row is not None else None


def _first(resolve: Callable) -> Callable:
    return lambda args: resolve(args[0]) if args else None


# task name → the host the message is about (None: nothing to check against yet).
SUBJECTS: dict[str, Callable[[Sequence], object]] = {
    "hosts.register": lambda args: (
        _host_named((args[0] or {}).get("name")) if args and isinstance(args[0], dict) else None
    ),
    "hosts.heartbeat": _first(_host_named),
    "containers.report_state": _first(_host_of_container),
    "containers.health_report": _first(_host_of_container),
    "containers.exec_report": _first(_host_of_exec),
    "images.operation_progress": _first(_host_of_operation),
    "images.operation_finished": _first(_host_of_operation),
    "images.sync": _first(_host_named),
    "volumes.removed": _first(_host_named),
}


def accept(task_name: str, args: Sequence, sender, signature) -> bool:
    """Whether a message from the broker may run (see the module docstring)."""
    subject = SUBJECTS[task_name](args)
    if sender is None:
        if subject is not None and subject.signing_key_encrypted:
            log.warning("dropped unsigned %s about joined host %s", task_name, subject.name)
            return False
        return True
    host = _host_named(sender)
    if host is None or not host.signing_key_encrypted:
        log.warning("dropped %s signed by unknown or unjoined host %r", task_name, sender)
        return False
    from berth.crypto import decrypt_text

    if not agent_auth.valid(decrypt_text(host.signing_key_encrypted), task_name, args, signature):
        log.warning("dropped %s with a bad signature from host %s", task_name, host.name)
        return False
    if subject is not None and subject.pk != host.pk:
        log.warning("dropped %s from host %s about host %s", task_name, host.name, subject.name)
        return False
    return True


class AgentMessageTask(Task):
    """The Celery task class of the Berth app: agent messages are checked before they run.

    Only messages that came through the broker are checked (they have an id);
    calling a task function directly in-process is trusted code.
    """

    def __call__(self, *args, **kwargs):
        if self.name in SUBJECTS and self.request.id is not None:
            sender = _header(self.request, agent_auth.HOST_HEADER)
            signature = _header(self.request, agent_auth.SIGNATURE_HEADER)
            if not accept(self.name, args, sender, signature):
                return None
        return super().__call__(*args, **kwargs)


def _header(request, name: str):
    """A message header: a worker puts custom headers on the request itself, ``apply``
    only in ``request.headers``."""
    value = getattr(request, name, None)
    return value if value is not None else (request.headers or {}).get(name)
