"""Where a new container goes when its creator names no host.

A host is eligible when it is online, not cordoned, allowed by the team's
policy, matches every placement constraint (host labels), has enough CPUs
and enough unreserved memory. Among eligible hosts the one with the most free
memory wins; the image being present already breaks ties, then the name (so
the choice is repeatable).

Free memory is the host's memory minus the memory limits of the containers
that occupy it (pending, created, running, restarting, paused). Containers
without a limit reserve nothing, so a host full of unlimited containers still
looks free: set limits (or a team memory quota) to make placement meaningful.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import BigIntegerField, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.teams import policy
from berth.errors import InvalidInput

MAX_CONSTRAINTS = 32
CONSTRAINT_PATTERN = re.compile(r"^\s*([A-Za-z0-9_.\-/]+)\s*(==|!=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``key==value`` (the host has label key with that value) or ``key!=value``."""

    key: str
    value: str
    equal: bool

    def matches(self, labels: dict) -> bool:
        return (labels.get(self.key) == self.value) == self.equal

    def __str__(self) -> str:
        return f"{self.key}{'==' if self.equal else '!='}{self.value}"


def parse_constraints(value: Any) -> list[Constraint]:
    """A list of "key==value" / "key!=value" strings on host labels (as Swarm's)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(
            'constraints must be a list like ["region==eu", "disk!=hdd"]', field="constraints"
        )
    if len(value) > MAX_CONSTRAINTS:
        raise InvalidInput(f"at most {MAX_CONSTRAINTS} constraints", field="constraints")
    parsed = []
    for item in value:
        match = CONSTRAINT_PATTERN.match(item)
        if match is None:
            raise InvalidInput(
                f"constraint {item!r} is not 'label==value' or 'label!=value'",
                field="constraints",
            )
        key, operator, wanted = match.groups()
        parsed.append(Constraint(key, wanted, operator == "=="))
    return parsed


@dataclass(frozen=True)
class Candidate:
    host: Host
    free_memory: int
    has_image: bool

    @property
    def rank(self) -> tuple:
        return (-self.free_memory, not self.has_image, self.host.name)


def reserved_memory(host_ids: Iterable[int]) -> dict[int, int]:
    """Host id → the sum of memory limits of the containers occupying it (one query)."""
    from apps.containers.choices import ACTIVE_STATES
    from apps.containers.models import Container

    limit = Cast(KeyTextTransform("memory", "options"), BigIntegerField())
    rows = (
        Container.objects.filter(host_id__in=list(host_ids), state__in=ACTIVE_STATES)
        .values("host_id")
        .annotate(reserved=Sum(limit))
        .values_list("host_id", "reserved")
    )
    return {host_id: reserved or 0 for host_id, reserved in rows}


def candidates(
    team,
    *,
    image_host_ids: set[int],
    cpus: float | None = None,
    memory: int | None = None,
    constraints: Iterable[Constraint] = (),
) -> list[Candidate]:
    """Every eligible host, best first."""
    from apps.teams.policy import allowed_hosts

    hosts = Host.objects.filter(status=HostStatus.ONLINE, cordoned=False)
    hosts = allowed_hosts(team, hosts)
    if cpus is not None:
        hosts = hosts.filter(Q(cpus__isnull=True) | Q(cpus__gte=cpus))
    constraints = list(constraints)
    hosts = [host for host in hosts if all(rule.matches(host.labels or {}) for rule in constraints)]
    reserved = reserved_memory(host.pk for host in hosts)
    found = []
    for host in hosts:
        free = (host.memory_bytes or 0) - reserved.get(host.pk, 0)
        if memory is not None and host.memory_bytes is not None and memory > free:
            continue
        found.append(Candidate(host, free, host.pk in image_host_ids))
    return sorted(found, key=lambda candidate: candidate.rank)


def why_not(host: Host, team, constraints: Iterable[Constraint]) -> str:
    """The first reason ``host`` is not eligible, for error messages."""
    from apps.teams.policy import allowed_hosts

    if not host.is_online:
        return "offline"
    if host.cordoned:
        return "cordoned"
    if not allowed_hosts(team, Host.objects.filter(pk=host.pk)).exists():
        return "not allowed by the team's policy"
    for rule in constraints:
        if not rule.matches(host.labels or {}):
            return f"does not match {rule}"
    return "too full"


def host_for_resource(team, host_name: Any) -> Host:
    """The host a team's new volume or network goes on: the one named, else the first
    online host the team's policy allows."""
    if host_name is not None:
        host = Host.objects.filter(name=host_name).first() if isinstance(host_name, str) else None
        if host is None:
            raise InvalidInput(f"unknown host {host_name!r}", field="host")
        if not host.is_online:
            raise InvalidInput(f"host {host.name} is offline", field="host")
        policy.check_host_allowed(team, host)
        return host
    online = Host.objects.filter(status=HostStatus.ONLINE).order_by("name")
    host = policy.allowed_hosts(team, online).first()
    if host is None:
        raise InvalidInput("no online host the team may use; pass 'host'", field="host")
    return host
