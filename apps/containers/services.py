"""Everything that changes a container: create, stop, kill, remove, and agent reports.

Views, the API and Celery tasks all call these functions; the control plane
reaches agents only through ``apps.hosts.services.send_to_host``/``call_host``.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import signal as signals
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q

from apps.containers.choices import (
    ACTIVE_STATES,
    DEFAULT_KILL_SIGNAL,
    DEFAULT_STOP_TIMEOUT,
    REPORTED_STATES,
    SIGNALLABLE_STATES,
    State,
)
from apps.containers.events import event_from_container, send_container_event
from apps.containers.models import Container
from apps.containers.names import generate_name, name_error
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.hosts.services import call_host, send_to_host
from apps.images.models import Image
from apps.images.reference import normalize_reference
from apps.images.services import images_usable_by
from apps.teams.services import resolve_team_for_create
from berth.errors import Conflict, InvalidInput
from berth.timestamps import parse_iso

log = logging.getLogger(__name__)

NAME_ATTEMPTS = 20
MAX_SIGNAL = 64


# ---- create -------------------------------------------------------------------------------


def create_container(user, data: dict) -> Container:
    """Validate a run request, create the row as ``pending`` and queue the run for the agent.

    Every rejection is an ``InvalidInput`` naming the field, so the API can
    answer 400 with a reason instead of failing later on the host.
    """
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    reference = parse_image(data.get("image"))
    command = parse_command(data.get("command"))
    env = parse_env(data.get("env"))
    image = place(reference, team, data.get("host") or None)
    return _insert(team, image, command, env, data.get("name") or None)


def parse_image(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'image' is required, e.g. \"busybox\"", field="image")
    try:
        return normalize_reference(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="image") from None


def parse_command(value: Any) -> list[str]:
    """A list of strings is taken as-is; a string is split like a shell would (no expansion)."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise InvalidInput(f"cannot split command: {exc}", field="command") from None
    if isinstance(value, list) and all(isinstance(arg, str) for arg in value):
        return value
    raise InvalidInput("'command' must be a list of strings or a string", field="command")


def parse_env(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("'env' must be a list of \"KEY=value\" strings", field="env")
    for item in value:
        if not isinstance(item, str) or "=" not in item or item.startswith("="):
            raise InvalidInput(f'env entry {item!r} is not "KEY=value"', field="env")
        if "\0" in item:
            raise InvalidInput(f"env entry {item!r} contains a NUL byte", field="env")
    return value


def place(reference: str, team, host_name: str | None) -> Image:
    """The image row to run: on the named host, or on the least busy online host that has it."""
    if host_name is not None:
        return _image_on_named_host(reference, team, host_name)
    candidates = images_usable_by(team).filter(reference=reference)
    if not candidates.exists():
        raise InvalidInput(f"unknown image {reference}: no host has it", field="image")
    online = candidates.filter(host__status=HostStatus.ONLINE)
    active = Q(host__containers__state__in=ACTIVE_STATES)
    best = online.annotate(load=Count("host__containers", filter=active)).order_by(
        "load", "host__name"
    )
    image = best.select_related("host").first()
    if image is None:
        hosts = ", ".join(sorted(candidates.values_list("host__name", flat=True)))
        raise InvalidInput(f"image {reference} is only on offline hosts: {hosts}", field="host")
    return image


def _image_on_named_host(reference: str, team, host_name: Any) -> Image:
    host = Host.objects.filter(name=host_name).first() if isinstance(host_name, str) else None
    if host is None:
        raise InvalidInput(f"unknown host {host_name!r}", field="host")
    if not host.is_online:
        raise InvalidInput(f"host {host.name} is offline", field="host")
    image = images_usable_by(team).filter(reference=reference, host=host)
    image = image.select_related("host").first()
    if image is None:
        raise InvalidInput(f"unknown image {reference} on host {host.name}", field="image")
    return image


def _insert(team, image: Image, command: list[str], env: list[str], name: str | None) -> Container:
    """Insert with the given name, or with generated names until one is free in the team."""
    if name is not None:
        _check_name(name)
        try:
            return _insert_row(team, image, command, env, name)
        except IntegrityError:
            raise InvalidInput(
                f"name {name!r} is already taken in team {team.slug}", field="name"
            ) from None
    for attempt in range(NAME_ATTEMPTS):
        candidate = generate_name()
        if attempt >= NAME_ATTEMPTS // 2:  # a crowded team: widen the name space
            candidate = f"{candidate}_{secrets.token_hex(2)}"
        try:
            return _insert_row(team, image, command, env, candidate)
        except IntegrityError:
            continue
    raise InvalidInput("could not generate a free container name; pass 'name'", field="name")


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise InvalidInput("'name' must be a string", field="name")
    problem = name_error(name)
    if problem:
        raise InvalidInput(problem, field="name")


def _insert_row(team, image: Image, command, env, name: str) -> Container:
    """Insert and queue the run in one savepoint: a name clash rolls back the message too."""
    with transaction.atomic():
        container = Container.objects.create(
            name=name,
            team=team,
            host=image.host,
            image=image,
            image_reference=image.reference,
            command=command,
            env=env,
        )
        send_to_host(image.host, "agent.container_run", [container.id, run_spec(container)])
        _announce(container)
    return container


def run_spec(container: Container) -> dict:
    """The ``spec`` of ``agent.container_run`` (docs/agent-protocol.md)."""
    return {
        "image": container.image_reference,
        "args": list(container.command),
        "env": list(container.env),
        "cwd": "/",
        "hostname": container.short_id,
        "name": container.name,
    }


# ---- actions ------------------------------------------------------------------------------


def stop_container(container: Container, timeout: int = DEFAULT_STOP_TIMEOUT) -> Container:
    _require_signallable(container, "stop")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 3600:
        raise InvalidInput("'timeout' must be whole seconds between 0 and 3600", field="timeout")
    send_to_host(container.host, "agent.container_stop", [container.id, timeout])
    return container


def kill_container(container: Container, signal: Any = DEFAULT_KILL_SIGNAL) -> Container:
    number = parse_signal(signal)
    _require_signallable(container, "kill")
    send_to_host(container.host, "agent.container_kill", [container.id, number])
    return container


def parse_signal(value: Any) -> int:
    """Accept 9, "9", "KILL" or "SIGKILL", as ``docker kill --signal`` does."""
    if value is None or value == "":
        return DEFAULT_KILL_SIGNAL
    if isinstance(value, str) and not value.strip().isdigit():
        name = value.strip().upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        try:
            return int(signals.Signals[name])
        except KeyError:
            raise InvalidInput(f"unknown signal {value!r}", field="signal") from None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput("'signal' must be a number or a name like \"TERM\"", field="signal")
    number = int(value)
    if not 1 <= number <= MAX_SIGNAL:
        raise InvalidInput(f"signal must be between 1 and {MAX_SIGNAL}", field="signal")
    return number


def _require_signallable(container: Container, verb: str) -> None:
    if container.state not in SIGNALLABLE_STATES:
        raise Conflict(f"cannot {verb} container {container.name}: it is {container.state}")


@transaction.atomic
def remove_container(container: Container, force: bool = False) -> Container:
    """Ask the agent to remove the container; the row goes when it reports ``removed``.

    Refused while running unless ``force``, like ``docker rm``, so a typo does
    not kill a live service.
    """
    if container.state == State.RUNNING and not force:
        raise Conflict(
            f"container {container.name} is running; stop it first or remove with force=1"
        )
    Container.objects.filter(pk=container.pk).update(state=State.REMOVING)
    container.state = State.REMOVING
    send_to_host(container.host, "agent.container_remove", [container.id, bool(force)])
    _announce(container)
    return container


def read_logs(container: Container, tail: int | None = None, timestamps: bool = False) -> str:
    """Fetch the log text from the agent (RPC); raises HostUnavailable when it cannot answer."""
    if tail is not None and (not isinstance(tail, int) or tail < 0):
        raise InvalidInput("'tail' must be a whole number >= 0", field="tail")
    args = [container.id, tail, bool(timestamps)]
    text = call_host(container.host, "agent.container_logs", args, settings.BERTH_LOGS_TIMEOUT)
    return text if isinstance(text, str) else str(text or "")


# ---- reports from agents ------------------------------------------------------------------


@dataclass(frozen=True)
class Report:
    seq: int
    state: str
    pid: int | None
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    error: str


def parse_report(report: Any) -> Report:
    if not isinstance(report, dict):
        raise ValueError("report must be an object")
    seq, state = report.get("seq"), report.get("state")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise ValueError(f"report seq must be a whole number >= 0, got {seq!r}")
    if state not in REPORTED_STATES:
        raise ValueError(f"report state must be one of {sorted(REPORTED_STATES)}, got {state!r}")
    return Report(
        seq=seq,
        state=state,
        pid=_optional_int(report, "pid"),
        exit_code=_optional_int(report, "exit_code"),
        started_at=parse_iso(report.get("started_at")),
        finished_at=parse_iso(report.get("finished_at")),
        error=str(report.get("error") or ""),
    )


def _optional_int(report: dict, key: str) -> int | None:
    value = report.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"report {key} must be an integer or null, got {value!r}")
    return value


@transaction.atomic
def apply_report(container_id: str, report: dict) -> bool:
    """Apply an agent's report if it is newer than what is stored; True when applied.

    The compare-and-set is one conditional UPDATE (``WHERE state_seq < seq``),
    so concurrent workers handling reports of the same container cannot move
    it backwards. A newer ``removed`` report deletes the row instead.
    """
    parsed = parse_report(report)
    rows = Container.objects.filter(pk=container_id, state_seq__lt=parsed.seq)
    if parsed.state == State.REMOVED:
        return _apply_removal(container_id, rows, parsed)
    updated = rows.update(
        state=parsed.state,
        state_seq=parsed.seq,
        pid=parsed.pid,
        exit_code=parsed.exit_code,
        started_at=parsed.started_at,
        finished_at=parsed.finished_at,
        error=parsed.error,
    )
    if updated:
        _announce(Container.objects.select_related("team", "host").get(pk=container_id))
    else:
        log.debug("report seq %s for %s ignored (stale or unknown)", parsed.seq, container_id)
    return bool(updated)


def _apply_removal(container_id: str, rows, parsed: Report) -> bool:
    container = rows.select_related("team", "host").first()
    if container is None:
        return False
    deleted, _ = rows.delete()
    if deleted:
        container.state_seq = parsed.seq
        _announce(container, state=State.REMOVED)
    return bool(deleted)


def _announce(container: Container, state: str | None = None) -> None:
    """Broadcast the container's state to its team once the change is committed."""
    event = event_from_container(container, state)
    team_id = container.team_id
    transaction.on_commit(lambda: send_container_event(team_id, event))
