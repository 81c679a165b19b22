"""Everything that changes a container: create, start, stop, restart, kill, pause, update,
rename, remove, and agent reports; plus the reads that ask the agent (logs, stats).

Views, the API and Celery tasks all call these functions; the control plane
reaches agents only through ``apps.hosts.services.send_to_host``/``call_host``.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import signal as signals
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from apps.audit import record
from apps.containers import attach, logs
from apps.containers import options as container_options
from apps.containers.choices import (
    DEFAULT_KILL_SIGNAL,
    LIVE_STATES,
    LOGGING_STATES,
    ON_HOST_STATES,
    REPORTED_STATES,
    SIGNALLABLE_STATES,
    STARTABLE_STATES,
    STATS_STATES,
    State,
)
from apps.containers.events import event_from_container, send_container_event
from apps.containers.models import Container
from apps.containers.names import generate_name, name_error
from apps.containers.operations import (
    queue_action,
    recorded_call,
    settle_removal,
    settle_report,
)
from apps.hosts import scheduling
from apps.hosts.models import Host
from apps.hosts.services import call_host
from apps.images.models import Image
from apps.images.reference import normalize_reference
from apps.images.services import images_usable_by
from apps.networks import services as network_services
from apps.operations.choices import OperationKind
from apps.teams import policy as team_policy
from apps.teams.services import resolve_team_for_create
from apps.volumes.services import prepare_mounts
from berth.errors import AgentError, Conflict, HostUnavailable, InvalidInput
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
    fields = {"command": parse_command(data.get("command")), "env": parse_env(data.get("env"))}
    parsed = container_options.parse_create_options(
        data, site_admin=team_policy.allows_privileged(team, user)
    )
    fields.update(
        labels=parsed.labels,
        restart_policy=parsed.restart_policy,
        auto_remove=parsed.auto_remove,
        options=parsed.options,
    )
    name = data.get("name") or None
    if name is not None:
        _check_name(name)
    image = place(
        reference,
        team,
        data.get("host") or network_services.host_for_network(team, data),
        cpus=parsed.options.get("cpus"),
        memory=parsed.options.get("memory"),
        constraints=scheduling.parse_constraints(data.get("constraints")),
    )
    container_options.check_host_fit(parsed.options, image.host)
    _check_process(fields["command"], parsed.options)
    with transaction.atomic():
        team_policy.lock_policy(team)  # concurrent creates in one team wait here for quotas
        team_policy.check_quota(team, user, parsed.options)
        fields["options"] = prepare_mounts(user, team, image, parsed.options)
        fields["options"] = network_services.prepare_network(team, image.host, fields["options"])
        container = _insert(team, image, fields, name, user)
        details = {"image": container.image_reference, "host": container.host.name}
        record("container.create", container, details=details)
        return container


def _check_process(command: list[str], options: dict) -> None:
    """An emptied entrypoint (``--entrypoint ""``) drops the image's Cmd too, as in Docker:
    the request must then name the command itself."""
    if options.get("entrypoint") == [] and not command:
        raise InvalidInput("no command specified: an empty entrypoint needs a command",
                           field="command")


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
    """A list of "KEY=value" strings, or an object of KEY → value."""
    if value is None:
        return []
    if isinstance(value, dict):
        if not all(isinstance(key, str) and isinstance(v, str) for key, v in value.items()):
            raise InvalidInput("'env' as an object must map names to strings", field="env")
        value = [f"{key}={v}" for key, v in value.items()]
    if not isinstance(value, list):
        raise InvalidInput("'env' must be a list of \"KEY=value\" strings", field="env")
    for item in value:
        if not isinstance(item, str) or "=" not in item or item.startswith("="):
            raise InvalidInput(f'env entry {item!r} is not "KEY=value"', field="env")
        if "\0" in item:
            raise InvalidInput(f"env entry {item!r} contains a NUL byte", field="env")
    return value


def place(
    reference: str,
    team,
    host_name: str | None,
    *,
    cpus: float | None = None,
    memory: int | None = None,
    constraints=(),
) -> Image:
    """The image row to run: on the named host, or on the best eligible host that has it
    (``apps.hosts.scheduling``: online, uncordoned, allowed, matching, most free memory)."""
    if host_name is not None:
        return _image_on_named_host(reference, team, host_name)
    images = {row.host_id: row for row in images_usable_by(team).filter(reference=reference)}
    if not images:
        raise InvalidInput(f"unknown image {reference}: no host has it", field="image")
    ranked = scheduling.candidates(
        team, image_host_ids=set(images), cpus=cpus, memory=memory, constraints=constraints
    )
    for candidate in ranked:
        if candidate.has_image:
            image = images[candidate.host.pk]
            image.host = candidate.host
            return image
    raise _no_placement(reference, team, images, cpus, constraints)


def _no_placement(reference: str, team, images: dict, cpus, constraints) -> InvalidInput:
    hosts = list(Host.objects.filter(pk__in=list(images)).order_by("name"))
    online = [host for host in hosts if host.is_online]
    if not online:
        names = ", ".join(host.name for host in hosts)
        return InvalidInput(f"image {reference} is only on offline hosts: {names}", field="host")
    if cpus is not None and all(host.cpus is not None and host.cpus < cpus for host in online):
        return InvalidInput(f"no online host with {reference} has {cpus:g} CPUs", field="cpus")
    reasons = "; ".join(
        f"{host.name} is {scheduling.why_not(host, team, constraints)}" for host in hosts[:10]
    )
    return InvalidInput(f"no eligible host has {reference}: {reasons}", field="host")


def _image_on_named_host(reference: str, team, host_name: Any) -> Image:
    host = Host.objects.filter(name=host_name).first() if isinstance(host_name, str) else None
    if host is None:
        raise InvalidInput(f"unknown host {host_name!r}", field="host")
    if not host.is_online:
        raise InvalidInput(f"host {host.name} is offline", field="host")
    if host.cordoned:
        raise InvalidInput(f"host {host.name} is cordoned: no new containers", field="host")
    team_policy.check_host_allowed(team, host)
    image = images_usable_by(team).filter(reference=reference, host=host)
    image = image.select_related("host").first()
    if image is None:
        raise InvalidInput(f"unknown image {reference} on host {host.name}", field="image")
    return image


def _insert(team, image: Image, fields: dict, name: str | None, user=None) -> Container:
    """Insert with the given name, or with generated names until one is free in the team."""
    if name is not None:
        try:
            return _insert_row(team, image, fields, name, user)
        except IntegrityError:
            raise InvalidInput(
                f"name {name!r} is already taken in team {team.slug}", field="name"
            ) from None
    for attempt in range(NAME_ATTEMPTS):
        candidate = generate_name()
        if attempt >= NAME_ATTEMPTS // 2:  # a crowded team: widen the name space
            candidate = f"{candidate}_{secrets.token_hex(2)}"
        try:
            return _insert_row(team, image, fields, candidate, user)
        except IntegrityError:
            continue
    raise InvalidInput("could not generate a free container name; pass 'name'", field="name")


def _check_name(name: Any) -> None:
    if not isinstance(name, str):
        raise InvalidInput("'name' must be a string", field="name")
    problem = name_error(name)
    if problem:
        raise InvalidInput(problem, field="name")


def _insert_row(team, image: Image, fields: dict, name: str, user=None) -> Container:
    """Insert and queue the run in one savepoint: a name clash rolls back the message too."""
    with transaction.atomic():
        container = Container.objects.create(
            name=name,
            team=team,
            host=image.host,
            image=image,
            image_reference=image.reference,
            **fields,
        )
        args = [container.id, run_spec(container)]
        queue_action(OperationKind.CREATE, container, "agent.container_run", args, user=user)
        _announce(container)
    return container


def run_spec(container: Container) -> dict:
    """The ``spec`` of ``agent.container_run`` (docs/agent-protocol.md).

    An empty ``cwd`` means the image's WorkingDir (else "/"), as in Docker;
    optional fields appear only when they differ from the engine's defaults.
    """
    options = container.options or {}
    return {
        "image": container.image_reference,
        "args": list(container.command),
        "env": list(container.env),
        "cwd": options.get("working_dir") or "",
        "hostname": options.get("hostname") or container.short_id,
        "name": container.name,
        **container_options.agent_spec_fields(options, container.restart_policy),
    }


# ---- actions ------------------------------------------------------------------------------


def start_container(container: Container) -> Container:
    """Start a created or exited container (``docker start``); the agent reports the rest."""
    _require_state(container, STARTABLE_STATES, "start")
    queue_action(OperationKind.START, container, "agent.container_start", [container.id])
    record("container.start", container)
    return container


def stop_container(container: Container, timeout: int | None = None) -> Container:
    """SIGTERM (or the stop signal), then SIGKILL after ``timeout`` (default: its stop_timeout)."""
    timeout = _stop_timeout(container, timeout)
    _require_signallable(container, "stop")
    queue_action(OperationKind.STOP, container, "agent.container_stop", [container.id, timeout])
    record("container.stop", container, details={"timeout": timeout})
    return container


def restart_container(container: Container, timeout: int | None = None) -> Container:
    """Stop (as ``stop_container``) and start again; a stopped container just starts."""
    timeout = _stop_timeout(container, timeout)
    _require_state(container, ON_HOST_STATES, "restart")
    args = [container.id, timeout]
    queue_action(OperationKind.RESTART, container, "agent.container_restart", args)
    record("container.restart", container, details={"timeout": timeout})
    return container


def kill_container(container: Container, signal: Any = DEFAULT_KILL_SIGNAL) -> Container:
    number = parse_signal(signal)
    _require_signallable(container, "kill")
    queue_action(OperationKind.KILL, container, "agent.container_kill", [container.id, number])
    record("container.kill", container, details={"signal": number})
    return container


def pause_container(container: Container) -> Container:
    _require_state(container, {State.RUNNING}, "pause")
    queue_action(OperationKind.PAUSE, container, "agent.container_pause", [container.id])
    record("container.pause", container)
    return container


def unpause_container(container: Container) -> Container:
    _require_state(container, {State.PAUSED}, "unpause")
    queue_action(OperationKind.UNPAUSE, container, "agent.container_unpause", [container.id])
    record("container.unpause", container)
    return container


def parse_signal(value: Any) -> int:
    """Accept 9, "9", "KILL" or "SIGKILL", as ``docker kill --signal`` does."""
    if value is None or value == "":
        return DEFAULT_KILL_SIGNAL
    if isinstance(value, str) and not value.strip().isdecimal():
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


def _stop_timeout(container: Container, timeout: Any) -> int:
    if timeout is None:
        return container.stop_timeout
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 <= timeout <= 3600:
        raise InvalidInput("'timeout' must be whole seconds between 0 and 3600", field="timeout")
    return timeout


def _require_signallable(container: Container, verb: str) -> None:
    _require_state(container, SIGNALLABLE_STATES, verb)


def _require_state(container: Container, states, verb: str) -> None:
    if container.state not in states:
        raise Conflict(f"cannot {verb} container {container.name}: it is {container.state}")


def update_container(container: Container, data: Any) -> Container:
    """Change resource limits and the restart policy, on the host first, then on the row.

    The agent applies limits live to a running container and keeps them for
    later starts; only the keys sent change (``docker update``).
    """
    changes, restart = container_options.parse_update(data)
    merged = {**(container.options or {}), **changes}
    container_options.check_limits(merged)
    container_options.check_host_fit(changes, container.host)
    team_policy.check_update_quota(container, changes)
    if restart is not None:
        container_options.check_auto_remove(container.auto_remove, restart)
    _require_state(container, ON_HOST_STATES, "update")
    limits = container_options.agent_limits(changes)
    with recorded_call(OperationKind.UPDATE, container):
        call_host(
            container.host,
            "agent.container_update",
            [container.id, limits or None, restart],
            settings.BERTH_CONTAINER_RPC_TIMEOUT,
        )
    updated = _store_update(container, changes, restart)
    record("container.update", updated, details={**changes, "restart_policy": restart})
    return updated


@transaction.atomic
def _store_update(container: Container, changes: dict, restart: str | None) -> Container:
    """Merge the changed keys into the row under its lock, so concurrent updates both land."""
    row = (
        Container.objects.select_for_update()
        .select_related("team", "host")
        .filter(pk=container.pk)
        .first()
    )
    if row is None:
        raise Conflict(f"container {container.name} was removed meanwhile")
    row.options = {**(row.options or {}), **changes}
    fields = ["options"]
    if restart is not None:
        row.restart_policy = restart
        fields.append("restart_policy")
    row.save(update_fields=fields)
    return row


def rename_container(container: Container, name: Any) -> Container:
    """Give the container another name, unique in its team (the host keeps its own record)."""
    _check_name(name)
    if name == container.name:
        return container
    try:
        with transaction.atomic():
            # Compare-and-set on the old name: a concurrent rename makes this one a 409.
            updated = Container.objects.filter(pk=container.pk, name=container.name).update(
                name=name
            )
            if not updated:
                raise Conflict(f"container {container.name} was renamed or removed meanwhile")
            record("container.rename", container, details={"from": container.name, "to": name})
            container.name = name
            _announce(container)
    except IntegrityError:
        raise InvalidInput(
            f"name {name!r} is already taken in team {container.team.slug}", field="name"
        ) from None
    return container


@transaction.atomic
def remove_container(container: Container, force: bool = False, volumes: bool = False) -> Container:
    """Ask the agent to remove the container; the row goes when it reports ``removed``.
    ``volumes`` also removes its anonymous volumes (``docker rm -v``); named ones stay.

    Refused while running unless ``force``, like ``docker rm``, so a typo does
    not kill a live service.
    """
    if container.state in LIVE_STATES and not force:
        raise Conflict(
            f"container {container.name} is {container.state}; stop it first or remove with force=1"
        )
    Container.objects.filter(pk=container.pk).update(state=State.REMOVING)
    container.state = State.REMOVING
    args = [container.id, bool(force)] + ([True] if volumes else [])
    queue_action(OperationKind.REMOVE, container, "agent.container_remove", args)
    record("container.remove", container, details={"force": bool(force), "volumes": bool(volumes)})
    _announce(container)
    return container


# ---- reads --------------------------------------------------------------------------------


def container_stats(container: Container) -> dict:
    """One sample of the container's resource use from its agent (RPC)."""
    _require_state(container, STATS_STATES, "read stats of")
    answer = call_host(
        container.host,
        "agent.container_stats",
        [container.id],
        settings.BERTH_CONTAINER_RPC_TIMEOUT,
    )
    if not isinstance(answer, dict):
        raise AgentError(f"host {container.host.name} answered agent.container_stats without stats")
    return answer


def current_state(container_id: str) -> dict | None:
    """``{"state", "exit_code", "oom_killed"}`` of the row, or None once it is deleted."""
    return (
        Container.objects.filter(pk=container_id).values("state", "exit_code", "oom_killed").first()
    )


def logs_may_grow(container_id: str) -> bool:
    """Whether the container may still write logs (pending, running, paused, restarting)."""
    row = current_state(container_id)
    return row is not None and row["state"] in LOGGING_STATES


def read_logs(container: Container, tail: int | None = None, timestamps: bool = False) -> str:
    """Fetch the log text from the agent (RPC); raises HostUnavailable when it cannot answer."""
    if tail is not None and (not isinstance(tail, int) or tail < 0):
        raise InvalidInput("'tail' must be a whole number >= 0", field="tail")
    args = [container.id, tail, bool(timestamps)]
    text = call_host(container.host, "agent.container_logs", args, settings.BERTH_LOGS_TIMEOUT)
    return text if isinstance(text, str) else str(text or "")


@dataclass(frozen=True)
class LogsRead:
    text: str  # what there is now
    last_id: str | None  # where following the stream goes on; None: the stream is not used
    source: str  # "stream" (Redis) or "agent" (the host's files, via RPC)


def read_container_logs(container: Container, query: logs.LogQuery) -> LogsRead:
    """The logs the query selects, from the Redis stream, else from the agent.

    The agent's files are asked when the stream is empty or missing (records
    not shipped yet, or Redis lost them) and when Redis is unreachable; they
    only know ``tail`` and ``timestamps``, so a query filtering by time or
    stream gets what the stream has (an empty answer, or 503 without Redis).
    A follower of a container that is still running waits for the stream.
    """
    try:
        page = logs.read(container.id, query)
    except logs.LogStoreUnavailable as exc:
        log.warning("log stream of %s unreadable: %s", container.id, exc)
        if query.filtered:
            raise HostUnavailable(f"the log stream is unreachable: {exc}") from exc
        return LogsRead(_agent_logs(container, query), None, "agent")
    waiting = query.follow and container.state in LOGGING_STATES
    if page.empty and not query.filtered and not waiting:
        return LogsRead(_agent_logs(container, query), None, "agent")
    text = "".join(record.text(query.timestamps) for record in page.records)
    return LogsRead(text, page.last_id, "stream")


def read_log_records(container: Container, query: logs.LogQuery, after: str | None) -> logs.Page:
    """The stream's records after ``after`` (an entry id), for event streams; 503 without Redis."""
    try:
        return logs.read(container.id, query, after)
    except logs.LogStoreUnavailable as exc:
        raise HostUnavailable(f"the log stream is unreachable: {exc}") from exc


def log_pages(container: Container, query: logs.LogQuery) -> Iterator[logs.Page]:
    """``read_log_records`` from the start a batch at a time, so a long log streams out;
    503 without Redis."""
    try:
        yield from logs.pages(container.id, query)
    except logs.LogStoreUnavailable as exc:
        raise HostUnavailable(f"the log stream is unreachable: {exc}") from exc


def _agent_logs(container: Container, query: logs.LogQuery) -> str:
    if query.tail == 0:
        return ""
    return read_logs(container, query.tail, query.timestamps)


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
    oom_killed: bool | None = None  # None: not in the report (an older agent); kept as stored
    restart_count: int | None = None


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
        oom_killed=_optional_bool(report, "oom_killed"),
        restart_count=_optional_int(report, "restart_count", minimum=0),
    )


def _optional_int(report: dict, key: str, minimum: int | None = None) -> int | None:
    value = report.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"report {key} must be an integer or null, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"report {key} must be >= {minimum}, got {value!r}")
    return value


def _optional_bool(report: dict, key: str) -> bool | None:
    value = report.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise ValueError(f"report {key} must be true, false or null, got {value!r}")


@transaction.atomic
def apply_report(container_id: str, report: dict) -> bool:
    """Apply an agent's report if it is newer than what is stored; True when applied.

    The compare-and-set is one conditional UPDATE (``WHERE state_seq < seq``),
    so concurrent workers handling reports of the same container cannot move
    it backwards. A newer ``removed`` report deletes the row instead (and,
    after commit, its log stream). An applied ``exited`` report of an
    ``auto_remove`` container asks the agent to remove it; the row stays
    ``exited`` until then, so waiters see the exit code.
    """
    parsed = parse_report(report)
    # An ``unknown`` container (its host went silent) also takes the same seq again:
    # the agent resends its last reports when it is back.
    newer = Q(state_seq__lt=parsed.seq) | Q(state=State.UNKNOWN, state_seq=parsed.seq)
    rows = Container.objects.filter(newer, pk=container_id)
    if parsed.state == State.REMOVED:
        return _apply_removal(container_id, rows, parsed)
    changes = {
        "state": parsed.state,
        "state_seq": parsed.seq,
        "pid": parsed.pid,
        "exit_code": parsed.exit_code,
        "started_at": parsed.started_at,
        "finished_at": parsed.finished_at,
        "error": parsed.error,
    }
    if parsed.oom_killed is not None:
        changes["oom_killed"] = parsed.oom_killed
    if parsed.restart_count is not None:
        changes["restart_count"] = parsed.restart_count
    updated = rows.update(**changes)
    if not updated:
        log.debug("report seq %s for %s ignored (stale or unknown)", parsed.seq, container_id)
        return False
    network_services.record_report(container_id, report)
    settle_report(container_id, parsed.state, parsed.error)
    container = Container.objects.select_related("team", "host").get(pk=container_id)
    _announce(container)
    if parsed.state == State.EXITED and container.auto_remove:
        # As docker run --rm: its anonymous volumes go with it.
        args = [container.id, True, True]
        queue_action(OperationKind.REMOVE, container, "agent.container_remove", args)
    return True


def _apply_removal(container_id: str, rows, parsed: Report) -> bool:
    container = rows.select_related("team", "host").first()
    if container is None:
        return False
    settle_removal(container, parsed.error)
    deleted, _ = rows.delete()
    if deleted:
        container.state_seq = parsed.seq
        _announce(container, state=State.REMOVED)
        transaction.on_commit(lambda: _forget_streams(container_id))
    return bool(deleted)


def _forget_streams(container_id: str) -> None:
    logs.delete_stream(container_id)  # after a grace: a follower may still be reading
    attach.forget(container_id)


def mark_unknown_on_host(host_id: int) -> int:
    """Its host went silent: every container there that may exist is now ``unknown``
    (``state_seq`` kept, so the agent's next report restores the truth)."""
    rows = Container.objects.filter(host_id=host_id).exclude(
        state__in=[State.UNKNOWN, State.REMOVING]
    )
    ids = list(rows.values_list("pk", flat=True))
    Container.objects.filter(pk__in=ids).update(state=State.UNKNOWN)
    for container in Container.objects.filter(pk__in=ids).select_related("team", "host"):
        _announce(container)
    return len(ids)


def _announce(container: Container, state: str | None = None) -> None:
    """Broadcast the container's state to its team once the change is committed."""
    event = event_from_container(container, state)
    team_id = container.team_id
    transaction.on_commit(lambda: send_container_event(team_id, event))
