"""Operation rows (``apps.operations``) for container actions and exec starts.

An action opens its operation (``queued``, target = the container's id, or the
exec's) in the transaction that queues the agent's message. The agent's reports
close it, through the report paths that already exist:

- a container state report that was applied (not stale) succeeds the oldest open
  operation of the container whose kind that state satisfies (``SATISFIED_BY``);
  if none matches and the report carries an ``error``, the oldest open one fails
  with it. Matching first matters: a ``removed`` report still carries the error of
  an earlier failed start.
- a ``removed`` report then fails whatever is still open for the container and
  its execs ("container removed");
- exec reports move the exec's operation to running, then succeed it (``exited``,
  with the exit code in ``result``) or fail it (``failed``).

An operation whose host never answers stays open, visible as such. ``update`` is
an RPC: ``recorded_call`` closes it with the agent's answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import transaction

from apps.audit.context import current_request
from apps.containers.choices import ExecState, State
from apps.hosts.services import send_to_host
from apps.operations.choices import ACTIVE_STATUSES, OperationKind
from apps.operations.models import Operation
from apps.operations.services import finish_operation, open_operation, record_progress
from berth.errors import HostUnavailable

# The reported states that mean a queued action took effect.
SATISFIED_BY = {
    OperationKind.CREATE: {State.CREATED, State.RUNNING},
    OperationKind.START: {State.RUNNING},
    OperationKind.RESTART: {State.RUNNING},
    OperationKind.UNPAUSE: {State.RUNNING},
    OperationKind.STOP: {State.EXITED},
    OperationKind.KILL: {State.EXITED},
    OperationKind.PAUSE: {State.PAUSED},
    OperationKind.REMOVE: {State.REMOVED},
}
CONTAINER_KINDS = frozenset(SATISFIED_BY) | {OperationKind.UPDATE}
REMOVED_ERROR = "container removed"


def acting_user(user=None):
    """The given user, else the current request's (as the audit log records it)."""
    if user is None:
        user = getattr(current_request(), "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def queue_action(
    kind: str, container, task: str, args: Sequence, *, user=None, target: str = ""
) -> Operation:
    """Open the operation in the caller's transaction and send ``task`` once it commits.

    If the broker refuses the message, the operation fails with that reason
    before the error propagates: nobody waits for an agent that was never told.
    """
    host = container.host
    with transaction.atomic():
        operation = open_operation(
            kind,
            team=container.team,
            host=host,
            user=acting_user(user),
            target=target or container.id,
        )
        transaction.on_commit(lambda: _send(operation.id, host, task, list(args)))
    return operation


def _send(operation_id: str, host, task: str, args: list) -> None:
    try:
        send_to_host(host, task, args)  # committed already: sent right away
    except HostUnavailable as exc:
        _finish(operation_id, ok=False, error=exc.message)
        raise


@contextmanager
def recorded_call(kind: str, container, *, user=None) -> Iterator[Operation]:
    """An operation around a call the caller waits for (an RPC): failed if it raises."""
    operation = open_operation(
        kind, team=container.team, host=container.host, user=acting_user(user), target=container.id
    )
    try:
        yield operation
    except Exception as exc:
        _finish(operation.id, ok=False, error=getattr(exc, "message", None) or str(exc))
        raise
    _finish(operation.id, ok=True)


# ---- reports ------------------------------------------------------------------------------


def settle_report(container_id: str, state: str, error: str = "") -> Operation | None:
    """Close the operation an applied state report answers; the one closed, if any."""
    open_rows = _open(Operation.objects.filter(target=container_id, kind__in=SATISFIED_BY))
    kinds = [kind for kind, states in SATISFIED_BY.items() if state in states]
    operation = open_rows.filter(kind__in=kinds).first()
    if operation is not None:
        _finish(operation.id, ok=True, state=state)
        return operation
    operation = open_rows.first() if error else None
    if operation is not None:
        _finish(operation.id, ok=False, error=error, state=state)
    return operation


def settle_removal(container, error: str = "") -> None:
    """The container is being deleted: its remove succeeds, everything else open fails."""
    settle_report(container.id, State.REMOVED, error)
    exec_ids = list(container.execs.values_list("pk", flat=True))
    container_rows = Operation.objects.filter(target=container.id, kind__in=CONTAINER_KINDS)
    exec_rows = Operation.objects.filter(target__in=exec_ids, kind=OperationKind.EXEC)
    for operation in _open(container_rows | exec_rows):
        _finish(operation.id, ok=False, error=REMOVED_ERROR)


def settle_exec(exec_id: str, report: dict) -> None:
    """Apply an exec report that changed the exec to its operation."""
    operation = _open(Operation.objects.filter(target=exec_id, kind=OperationKind.EXEC)).first()
    if operation is None:
        return
    state = report.get("state")
    if state == ExecState.RUNNING:
        record_progress(operation.id, {"pid": report.get("pid")})
    elif state in (ExecState.EXITED, ExecState.FAILED):
        error = str(report.get("error") or "") or "the exec failed to start"
        _finish(
            operation.id,
            ok=state == ExecState.EXITED,
            error="" if state == ExecState.EXITED else error,
            exit_code=report.get("exit_code"),
        )


def _open(rows):
    return rows.filter(status__in=ACTIVE_STATUSES).order_by("created_at", "pk")


def _finish(operation_id: str, *, ok: bool, error: str = "", **result) -> None:
    finish_operation(operation_id, {"ok": ok, "error": error, "images": [], **result})
