"""Exec sessions: create, start, feed, resize, signal, and the agent's reports.

The one place that changes Exec rows. Permission is checked here (operators,
owners and site admins of the container's team) so the REST API, the
dashboard terminal and the Docker API share it. The stdio itself travels
through ``apps.containers.relay``.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.containers import relay
from apps.containers.choices import EXEC_FINAL_STATES, ExecState, State
from apps.containers.models import Container, Exec
from apps.containers.operations import queue_action, settle_exec
from apps.containers.options import parse_int
from apps.operations.choices import OperationKind
from apps.teams.services import can_act
from berth.errors import Conflict, Forbidden, InvalidInput, TooLarge
from berth.timestamps import parse_iso

MAX_COMMAND = 4096
MAX_INPUT = 1 << 20  # bytes per input request; Redis holds them until the agent reads
MAX_SPEC = 128 * 1024  # bytes of command and env together, as the engine takes them
MAX_TERMINAL = 1000  # rows or columns


def require_operator(user, container: Container) -> None:
    if not can_act(user, container.team):
        raise Forbidden("Your role in this team only allows reading (operator or owner required).")


def create_exec(user, container: Container, data: Any) -> Exec:
    """Record an exec (``docker exec`` create); nothing runs until ``start_exec``."""
    require_operator(user, container)
    if not isinstance(data, dict):
        raise InvalidInput("send a JSON object")
    _require_running(container)
    fields = dict(command=_command(data.get("command")), env=_env(data.get("env")))
    if len(json.dumps(fields)) > MAX_SPEC:
        raise TooLarge(f"command and env together must stay under {MAX_SPEC} bytes")
    return Exec.objects.create(
        container=container,
        created_by=user if getattr(user, "pk", None) else None,
        **fields,
        user=_text(data.get("user"), "user", 256),
        working_dir=_working_dir(data.get("working_dir")),
        tty=_bool(data.get("tty", False), "tty"),
        attach_stdin=_bool(data.get("stdin", False), "stdin"),
    )


def start_exec(user, exec_: Exec) -> Exec:
    """Queue the start on the container's host; a second start is a conflict."""
    container = exec_.container
    require_operator(user, container)
    _require_running(container)
    with transaction.atomic():
        claimed = Exec.objects.filter(pk=exec_.pk, state=ExecState.CREATED).update(
            state=ExecState.STARTING
        )
        if not claimed:
            raise Conflict(f"exec {exec_.id[:12]} was already started")
        args = [exec_.id, container.id, _spec(exec_)]
        queue_action(
            OperationKind.EXEC, container, "agent.exec_start", args, user=user, target=exec_.id
        )
    exec_.refresh_from_db()
    return exec_


def run_exec(user, container: Container, data: Any) -> Exec:
    return start_exec(user, create_exec(user, container, data))


def send_input(user, exec_: Exec, data: bytes, *, close: bool = False) -> None:
    require_operator(user, exec_.container)
    if not exec_.attach_stdin and not exec_.tty:
        raise Conflict("this exec was created without stdin")
    if exec_.state in EXEC_FINAL_STATES:
        raise Conflict(f"exec {exec_.id[:12]} has already ended")
    if len(data) > MAX_INPUT:
        raise TooLarge(f"send input in pieces of at most {MAX_INPUT} bytes")
    relay.write(exec_.id, data)
    if close:
        relay.close_input(exec_.id)


def resize_exec(user, exec_: Exec, rows: Any, columns: Any) -> None:
    require_operator(user, exec_.container)
    rows = parse_int(rows, "rows", 1, MAX_TERMINAL)
    columns = parse_int(columns, "columns", 1, MAX_TERMINAL)
    if not exec_.tty:
        raise Conflict("this exec has no terminal to resize")
    relay.resize(exec_.id, rows, columns)


def kill_exec(user, exec_: Exec, signum: Any = 9) -> None:
    require_operator(user, exec_.container)
    if exec_.state in EXEC_FINAL_STATES:
        raise Conflict(f"exec {exec_.id[:12]} has already ended")
    relay.signal(exec_.id, parse_int(signum, "signal", 1, 64))


def apply_report(exec_id: str, report: dict) -> bool:
    """The agent's word on an exec: ``running`` (pid), ``exited`` or ``failed``.

    Compare-and-set on the state, so a late ``running`` never overwrites ``exited``;
    a report that changed the exec also moves its operation.
    """
    applied = _apply_exec_report(exec_id, report)
    if applied:
        settle_exec(exec_id, report)
    return applied


def record_exit(exec_id: str, entry: relay.Output) -> bool:
    """The exit entry the agent wrote to the output stream, recorded as its report
    would be (which then changes nothing): a client that saw the stream end can ask
    for the exit code at once."""
    state = ExecState.FAILED if entry.error else ExecState.EXITED
    return apply_report(exec_id, {"state": state, "exit_code": entry.exit_code,
                                  "error": entry.error})


def _apply_exec_report(exec_id: str, report: dict) -> bool:
    state = report.get("state")
    now = timezone.now()
    rows = Exec.objects.filter(pk=exec_id)
    if state == ExecState.RUNNING:
        return bool(rows.filter(state=ExecState.STARTING).update(
            state=ExecState.RUNNING, pid=report.get("pid"), started_at=now))
    if state in (ExecState.EXITED, ExecState.FAILED):
        return bool(rows.exclude(state__in=EXEC_FINAL_STATES).update(
            state=state, exit_code=report.get("exit_code"), error=str(report.get("error") or ""),
            finished_at=parse_iso(report["finished_at"]) if report.get("finished_at") else now))
    return False


def _require_running(container: Container) -> None:
    if container.state == State.PAUSED:
        raise Conflict(f"container {container.short_id} is paused, unpause it first")
    if container.state != State.RUNNING:
        raise Conflict(f"container {container.short_id} is not running")


def _spec(exec_: Exec) -> dict:
    return {"args": exec_.command, "env": exec_.env, "user": exec_.user,
            "cwd": exec_.working_dir, "tty": exec_.tty, "stdin": exec_.attach_stdin}


def _command(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        raise InvalidInput("'command' must be a non-empty list of strings", field="command")
    if len(value) > MAX_COMMAND or any("\0" in a for a in value) or not value[0]:
        raise InvalidInput("'command' is not a valid command", field="command")
    return value


def _env(value: Any) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, list) or not all(
        isinstance(e, str) and "=" in e and not e.startswith("=") and "\0" not in e
        for e in value
    ):
        raise InvalidInput("'env' must be a list of NAME=value strings", field="env")
    return value


def _working_dir(value: Any) -> str:
    text = _text(value, "working_dir", 4096)
    if text and not text.startswith("/"):
        raise InvalidInput("'working_dir' must be an absolute path", field="working_dir")
    return text


def _text(value: Any, field: str, limit: int) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or len(value) > limit or "\0" in value or "\n" in value:
        raise InvalidInput(f"'{field}' must be a single-line string", field=field)
    return value


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"'{field}' must be true or false", field=field)
    return value
