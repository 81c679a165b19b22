"""Team policy checks: which hosts, how much, bind mounts and privileged options.

Services call these before they change state, so the dashboard, the REST API
and the Docker API refuse the same things with the same reasons. Site admins
are not limited by team policy. Every refusal is a ``Forbidden`` (403) naming
the field and the rule, so the caller knows what to change or whom to ask.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from apps.audit import record
from apps.teams.models import Team, TeamPolicy
from apps.teams.services import is_site_admin
from berth.errors import Forbidden, InvalidInput

MAX_ROOTS = 64


def policy_of(team: Team) -> TeamPolicy:
    """The team's policy row, or an unsaved one with the defaults."""
    policy = TeamPolicy.objects.filter(team=team).first()
    return policy if policy is not None else TeamPolicy(team=team)


# ---- bind mounts --------------------------------------------------------------------------


def normalize_host_path(host_path: str, field: str = "source") -> str:
    """An absolute, normalised host path ("/srv/a/../b/" → "/srv/b"); NUL bytes refused."""
    if not isinstance(host_path, str) or not host_path.startswith("/"):
        raise InvalidInput(
            f"bind mount source must be an absolute host path, got {host_path!r}", field=field
        )
    if "\0" in host_path:
        raise InvalidInput("bind mount source contains a NUL byte", field=field)
    # normpath keeps a leading "//" (POSIX leaves its meaning open); one slash is meant.
    return "/" + posixpath.normpath(host_path).lstrip("/")


def is_under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return root == "/" or path == root or path.startswith(root + "/")


def check_bind_mount(team: Team, user, host_path: str, *, field: str = "source") -> None:
    """Refuse a bind mount of ``host_path`` unless the team's policy allows it.

    Site admins may bind any path. Everyone else only paths under one of the
    team's ``bind_mount_roots``. The path is normalised first, so ``..`` cannot
    climb out of a root; symlinks on the host are the agent's to resolve
    (the control plane cannot see the host's filesystem).
    """
    path = normalize_host_path(host_path, field)
    if is_site_admin(user):
        return
    roots = policy_of(team).bind_mount_roots or []
    if not roots:
        raise Forbidden(
            f"team {team.slug} may not use bind mounts; a site admin can allow host paths "
            "in the team's policy (bind_mount_roots)",
            field=field,
        )
    if not any(is_under(path, root) for root in roots):
        allowed = ", ".join(roots)
        raise Forbidden(
            f"team {team.slug} may only bind host paths under {allowed}; {path} is not",
            field=field,
        )


def parse_roots(value) -> list[str]:
    """Validate ``bind_mount_roots`` as given to the policy API: absolute paths, normalised."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput(
            "'bind_mount_roots' must be a list of absolute paths", field="bind_mount_roots"
        )
    if len(value) > MAX_ROOTS:
        raise InvalidInput(f"at most {MAX_ROOTS} bind mount roots", field="bind_mount_roots")
    return sorted({normalize_host_path(item, "bind_mount_roots") for item in value})


# ---- privileged options -------------------------------------------------------------------


def allows_privileged(team: Team, user) -> bool:
    return is_site_admin(user) or policy_of(team).allow_privileged


def check_privileged(team: Team, user, option: str) -> None:
    """Refuse a privileged option (e.g. seccomp unconfined, added capabilities, devices)."""
    if not allows_privileged(team, user):
        raise Forbidden(
            f"'{option}' is a privileged option; team {team.slug}'s policy does not allow "
            "privileged options (ask a site admin)",
            field=option,
        )


# ---- hosts --------------------------------------------------------------------------------


def allowed_hosts(team: Team, hosts: QuerySet) -> QuerySet:
    """``hosts`` narrowed to those the team may use."""
    policy = TeamPolicy.objects.filter(team=team, restrict_hosts=True).first()
    if policy is None:
        return hosts
    return hosts.filter(pk__in=policy.allowed_hosts.values("pk"))


def check_host_allowed(team: Team, host, *, field: str = "host") -> None:
    policy = policy_of(team)
    if not policy.restrict_hosts:
        return
    if not policy.allowed_hosts.filter(pk=host.pk).exists():
        raise Forbidden(f"team {team.slug} may not use host {host.name}", field=field)


# ---- quotas -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    containers: int
    memory_bytes: int
    cpus: float


def usage_of(team: Team, exclude_id: str | None = None) -> Usage:
    """What the team's containers hold: every container counts, running or not,
    since any of them may be started at any time."""
    from apps.containers.models import Container

    rows = Container.objects.filter(team=team)
    if exclude_id is not None:
        rows = rows.exclude(pk=exclude_id)
    return _sum_usage(rows.values_list("options", flat=True))


def _sum_usage(options: Iterable[dict | None]) -> Usage:
    count, memory, cpus = 0, 0, 0.0
    for item in options:
        item = item or {}
        count += 1
        memory += item.get("memory") or 0
        cpus += item.get("cpus") or 0
    return Usage(count, memory, cpus)


def lock_policy(team: Team) -> TeamPolicy | None:
    """Lock the team's policy row for the rest of the transaction (None: no policy, no quotas),
    so concurrent creates in one team cannot both fit the last free slot."""
    return TeamPolicy.objects.select_for_update().filter(team=team).first()


def check_quota(team: Team, user, options: dict) -> None:
    """Refuse when one more container with these limits would exceed a quota.

    Call inside the transaction that inserts the container, after ``lock_policy``.
    """
    policy = TeamPolicy.objects.filter(team=team).first()
    if policy is None or is_site_admin(user):
        return
    usage = usage_of(team)
    if policy.max_containers is not None and usage.containers >= policy.max_containers:
        raise Forbidden(
            f"team {team.slug} has {usage.containers} of its {policy.max_containers} "
            "containers; remove one first",
            field="team",
            code="quota_exceeded",
        )
    _check_amount(
        team, "memory", options.get("memory"), usage.memory_bytes, policy.max_memory_bytes
    )
    _check_amount(team, "cpus", options.get("cpus"), usage.cpus, policy.max_cpus)


def check_update_quota(container, changes: dict) -> None:
    """Refuse an update of ``memory``/``cpus`` that would take the team over its quota;
    the container's new limits replace its old ones."""
    policy = TeamPolicy.objects.filter(team_id=container.team_id).first()
    if policy is None:
        return
    usage = usage_of(container.team, exclude_id=container.pk)
    if "memory" in changes:
        _check_amount(
            container.team, "memory", changes["memory"], usage.memory_bytes, policy.max_memory_bytes
        )
    if "cpus" in changes:
        _check_amount(container.team, "cpus", changes["cpus"], usage.cpus, policy.max_cpus)


def _check_amount(team: Team, field: str, wanted, used, limit) -> None:
    if limit is None:
        return
    if wanted is None:
        raise Forbidden(
            f"team {team.slug} has a {field} quota, so every container needs '{field}' set",
            field=field,
            code="quota_exceeded",
        )
    if used + wanted > limit:
        raise Forbidden(
            f"team {team.slug} would use {_show(field, used + wanted)} of {field}, "
            f"over its quota of {_show(field, limit)} ({_show(field, used)} in use)",
            field=field,
            code="quota_exceeded",
        )


def _show(field: str, amount) -> str:
    if field == "memory":
        return f"{amount / 2**20:g} MiB"
    return f"{amount:g}"


# ---- changing a policy --------------------------------------------------------------------

QUOTA_FIELDS = ("max_containers", "max_memory_bytes", "max_cpus")
FLAG_FIELDS = ("restrict_hosts", "allow_privileged")


@transaction.atomic
def update_policy(team: Team, user, data: dict) -> TeamPolicy:
    """Change the keys of ``data`` (site admins only: quotas bind the team's owners too)."""
    from apps.hosts.models import Host

    if not is_site_admin(user):
        raise Forbidden("only site admins may change a team's policy")
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    policy, _ = TeamPolicy.objects.get_or_create(team=team)
    for field in QUOTA_FIELDS:
        if field in data:
            setattr(policy, field, _quota(data[field], field))
    for field in FLAG_FIELDS:
        if field in data:
            if not isinstance(data[field], bool):
                raise InvalidInput(f"'{field}' must be true or false", field=field)
            setattr(policy, field, data[field])
    if "bind_mount_roots" in data:
        policy.bind_mount_roots = parse_roots(data["bind_mount_roots"])
    policy.save()
    if "allowed_hosts" in data:
        names = data["allowed_hosts"]
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise InvalidInput(
                "'allowed_hosts' must be a list of host names", field="allowed_hosts"
            )
        hosts = list(Host.objects.filter(name__in=names))
        missing = sorted(set(names) - {host.name for host in hosts})
        if missing:
            raise InvalidInput(f"unknown hosts: {', '.join(missing)}", field="allowed_hosts")
        policy.allowed_hosts.set(hosts)
    record("team.policy_update", team, details=data)
    return policy


def _quota(value, field: str):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise InvalidInput(f"'{field}' must be a number >= 0, or null for no limit", field=field)
    if field != "max_cpus":
        if value != int(value):
            raise InvalidInput(f"'{field}' must be a whole number", field=field)
        value = int(value)
    if value > 2**62:
        raise InvalidInput(f"'{field}' is too large", field=field)
    return value


def describe(policy: TeamPolicy) -> dict:
    """The policy as the API shows it."""
    saved = not policy._state.adding
    hosts = sorted(policy.allowed_hosts.values_list("name", flat=True)) if saved else []
    usage = usage_of(policy.team)
    return {
        "team": policy.team.slug,
        "restrict_hosts": policy.restrict_hosts,
        "allowed_hosts": hosts,
        "max_containers": policy.max_containers,
        "max_memory_bytes": policy.max_memory_bytes,
        "max_cpus": policy.max_cpus,
        "bind_mount_roots": list(policy.bind_mount_roots or []),
        "allow_privileged": policy.allow_privileged,
        "usage": {
            "containers": usage.containers,
            "memory_bytes": usage.memory_bytes,
            "cpus": usage.cpus,
        },
    }
