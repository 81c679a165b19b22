"""Host lifecycle (register, heartbeat, offline detection) and the only channel to agents.

All control-plane → agent traffic goes through ``send_to_host`` (fire and
forget, after commit) or ``call_host`` (RPC with a deadline), so routing,
serialisation and failure handling exist exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeoutError
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from apps.audit import record as audit_record
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from berth.celery import app as celery_app
from berth.celery import host_queue_name
from berth.errors import AgentError, Conflict, HostUnavailable, InvalidInput, NotFound

log = logging.getLogger(__name__)

BROKER_ERRORS = (OperationalError, RedisConnectionError, OSError)
INT_FACTS = ("cpus", "memory_bytes")
# An agent refuses a request by raising an exception with one of these class
# names; the API answers with the mapped error and the agent's own message.
# Any other agent exception is an AgentError (502).
AGENT_REFUSALS = {
    "ImageInUse": Conflict,
    "Conflict": Conflict,
    "ImageNotFound": NotFound,
    "NotFound": NotFound,
    # The engine's refusals of container requests ("is not running", bad limits,
    # no such container on this host): the request does not fit the container now.
    "RuntimeError_": Conflict,
    "NoSuchContainer": Conflict,
}
TEXT_FACTS = {"kernel": 200, "agent_version": 64, "cgroup_version": 16}


def _host_name(facts: dict) -> str:
    name = facts.get("name")
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise InvalidInput(f"host facts need a non-empty 'name' without spaces, got {name!r}")
    return name.strip()


def _int_fact(facts: dict, key: str) -> int | None:
    value = facts.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidInput(
            f"host fact {key!r} must be a whole number >= 0, got {value!r}", field=key
        )
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidInput(
            f"host fact {key!r} must be a whole number >= 0, got {value!r}", field=key
        )
    return number


def _host_fields(facts: dict) -> dict[str, Any]:
    fields: dict[str, Any] = {key: _int_fact(facts, key) for key in INT_FACTS}
    fields.update({key: str(facts.get(key) or "")[:size] for key, size in TEXT_FACTS.items()})
    return fields


@transaction.atomic
def register_host(facts: dict) -> Host:
    """Upsert a host from the facts its agent sends on start, and its image list.

    Registration counts as a heartbeat: an agent that just (re)started is alive.
    """
    from apps.images.services import sync_host_images

    if not isinstance(facts, dict):
        raise InvalidInput("host facts must be an object")
    now = timezone.now()
    host, created = Host.objects.update_or_create(
        name=_host_name(facts),
        defaults={**_host_fields(facts), "status": HostStatus.ONLINE, "last_heartbeat": now},
    )
    sync_host_images(host, facts.get("images") or [])
    log.info("host %s %s", host.name, "registered" if created else "re-registered")
    return host


def record_heartbeat(name: str, sent_at: float) -> bool:
    """Move ``last_heartbeat`` forward only (compare-and-set), and mark the host online.

    Heartbeats can arrive late or out of order; a single conditional UPDATE
    makes the newest one win without a read-modify-write race. ``sent_at`` is
    clamped to now so a host with a fast clock cannot stay "online" after dying,
    and a heartbeat already older than the offline threshold does not revive a host.
    A host that comes back this way is asked to report every container again,
    since they were marked ``unknown`` while it was silent.
    """
    now = timezone.now()
    stamp = min(_epoch_to_datetime(sent_at), now)
    fresh = now - stamp < timedelta(seconds=settings.BERTH_HOST_OFFLINE_AFTER)
    newer = Q(last_heartbeat__isnull=True) | Q(last_heartbeat__lt=stamp)
    rows = Host.objects.filter(newer, name=name)
    revived = 0
    if fresh:
        revived = rows.filter(status=HostStatus.OFFLINE).update(
            last_heartbeat=stamp, status=HostStatus.ONLINE
        )
        if revived:
            _ask_for_reports(name)
    updated = revived or rows.update(
        last_heartbeat=stamp, **({"status": HostStatus.ONLINE} if fresh else {})
    )
    if not updated and not Host.objects.filter(name=name).exists():
        log.warning("heartbeat from unregistered host %r ignored", name)
    return bool(updated)


def _ask_for_reports(name: str) -> None:
    host = Host.objects.filter(name=name).first()
    if host is not None:
        log.info("host %s is back: asking for every container's state", name)
        send_to_host(host, "agent.broadcast.report_all", [])


def _epoch_to_datetime(sent_at: float) -> datetime:
    try:
        return datetime.fromtimestamp(float(sent_at), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise InvalidInput(f"sent_at must be epoch seconds, got {sent_at!r}") from None


@transaction.atomic
def mark_offline(now: datetime | None = None) -> int:
    """Flag hosts whose last heartbeat is older than BERTH_HOST_OFFLINE_AFTER; returns how many.

    Their containers become ``unknown``: nobody can tell whether they still run.
    Nothing else changes (``state_seq`` stays), so the agent's next report puts
    the truth back (``apps.containers.services.apply_report`` accepts a report of
    the same seq for an ``unknown`` container).
    """
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.BERTH_HOST_OFFLINE_AFTER)
    stale = Q(last_heartbeat__lt=cutoff) | Q(last_heartbeat__isnull=True)
    silent = list(Host.objects.filter(stale, status=HostStatus.ONLINE).values_list("pk", "name"))
    count = 0
    for host_id, name in silent:
        # Compare-and-set per host: a heartbeat that arrived meanwhile keeps it online.
        if Host.objects.filter(stale, pk=host_id, status=HostStatus.ONLINE).update(
            status=HostStatus.OFFLINE
        ):
            count += 1
            _containers_unknown(host_id)
            audit_record(
                "host.offline", object_type="host", object_id=str(host_id), details={"name": name}
            )
    if count:
        log.info("marked %d host(s) offline", count)
    return count


def _containers_unknown(host_id: int) -> None:
    from apps.containers.services import mark_unknown_on_host

    mark_unknown_on_host(host_id)


def update_labels(host: Host, labels: dict) -> Host:
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InvalidInput(
            "labels must be an object of string keys and string values", field="labels"
        )
    host.labels = labels
    host.save(update_fields=["labels"])
    return host


def send_to_host(host: Host, task_name: str, args: Sequence, kwargs: dict | None = None) -> None:
    """Queue ``task_name`` for the host's agent once the current transaction commits.

    Sending after commit means the agent never acts on a row that a rollback
    erased, and never reports on a row it cannot find yet.
    """
    queue = host_queue_name(host.name)
    payload_args, payload_kwargs = list(args), dict(kwargs or {})

    def send() -> None:
        try:
            celery_app.send_task(task_name, args=payload_args, kwargs=payload_kwargs, queue=queue)
        except BROKER_ERRORS as exc:
            # The row is committed; say so plainly (503) instead of failing with a 500.
            log.error("could not queue %s for host %s: %s", task_name, host.name, exc)
            raise HostUnavailable(
                f"saved, but the message broker is unreachable, so host {host.name} "
                f"was not told: {exc}"
            ) from exc

    transaction.on_commit(send)


def call_host(host: Host, task_name: str, args: Sequence, timeout: float) -> Any:
    """Run ``task_name`` on the host's agent and wait for its answer (RPC).

    The message expires with the deadline so an agent that comes back late
    does not do work nobody waits for any more.
    """
    if not host.is_online:
        raise HostUnavailable(f"host {host.name} is offline")
    try:
        result = celery_app.send_task(
            task_name, args=list(args), queue=host_queue_name(host.name), expires=timeout
        )
    except BROKER_ERRORS as exc:
        raise HostUnavailable(f"message broker unreachable: {exc}") from exc
    try:
        return result.get(timeout=timeout)
    except CeleryTimeoutError:
        raise HostUnavailable(f"host {host.name} did not answer within {timeout:g}s") from None
    except BROKER_ERRORS as exc:
        raise HostUnavailable(f"result backend unreachable: {exc}") from exc
    except Exception as exc:  # the agent's own exception, re-raised by Celery
        raise agent_error(host, exc) from exc
    finally:
        _forget(result)


def agent_error(host: Host, exc: BaseException) -> Exception:
    """The service error for an exception the agent raised: a refusal, or a 502.

    Celery rebuilds the agent's exception by class name (a stand-in class
    when the agent's module is not importable here), so the name is what
    identifies a refusal.
    """
    name = type(exc).__name__.rsplit(".", 1)[-1]
    refusal = AGENT_REFUSALS.get(name)
    if refusal is not None:
        return refusal(str(exc) or f"host {host.name} refused: {name}")
    return AgentError(f"host {host.name}: {name}: {exc}")


def _forget(result) -> None:
    try:
        result.forget()
    except BROKER_ERRORS:
        log.debug("could not drop result %s", result.id)


# ---- cordon and drain ---------------------------------------------------------------------


@transaction.atomic
def set_cordoned(host: Host, cordoned: bool) -> Host:
    """A cordoned host gets no new containers; what runs there stays."""
    Host.objects.filter(pk=host.pk).update(cordoned=cordoned)
    host.cordoned = cordoned
    audit_record("host.cordon" if cordoned else "host.uncordon", host)
    return host


@transaction.atomic
def drain(host: Host, timeout: int = 10) -> int:
    """Cordon the host and stop every container running there; returns how many.

    Containers are not moved: their data and images live on this host. Start
    them again (or recreate them elsewhere) when the host is back in service.
    """
    from apps.containers.choices import LIVE_STATES
    from apps.containers.models import Container
    from apps.containers.services import stop_container

    set_cordoned(host, True)
    live = Container.objects.filter(host=host, state__in=LIVE_STATES).select_related("team")
    stopped = 0
    for container in live:
        container.host = host
        stop_container(container, timeout)
        stopped += 1
    audit_record("host.drain", host, details={"stopped": stopped})
    return stopped
