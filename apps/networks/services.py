"""Everything that changes a network: create, remove, connect and disconnect containers;
a new container's network choice; and what agents report of containers' addresses.

The agent on the network's host allocates subnets (it alone sees the host's routes)
and is the authority on who is attached; the control plane keeps rows to list,
scope by team and refuse early.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from apps.containers.choices import State
from apps.containers.models import Container
from apps.hosts import scheduling
from apps.hosts.models import Host
from apps.hosts.services import call_host
from apps.networks.choices import DEFAULT_NETWORK, MODES
from apps.networks.models import ContainerNetwork, Network
from apps.networks.options import parse_aliases, parse_network
from apps.teams.services import resolve_team_for_create, restrict_to_teams
from berth.errors import Conflict, InvalidInput, NotFound

SUBNET = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}")
ADDRESS = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
DETACHED_STATES = (State.PENDING, State.REMOVING)


def engine_name(team, name: str) -> str:
    """The network's name on its host; team slugs never contain a '.'."""
    return f"{team.slug}.{name}"


def _call(host: Host, task: str, args: list) -> Any:
    return call_host(host, task, args, settings.BERTH_CONTAINER_RPC_TIMEOUT)


# ---- create and remove --------------------------------------------------------------------


def create_network(user, data: Any) -> Network:
    """``docker network create``: a bridge network on one host; 409 if the name is taken."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    name = parse_network(data.get("name"), field="name")
    if name in MODES:
        raise InvalidInput(f"{name!r} is a predefined network; choose another name", field="name")
    driver = data.get("driver") or "bridge"
    if driver != "bridge":
        raise InvalidInput(f'unknown network driver {driver!r}: only "bridge"', field="driver")
    subnet = _optional(data, "subnet", SUBNET, "an IPv4 network such as 10.1.0.0/24")
    gateway = _optional(data, "gateway", ADDRESS, "an IPv4 address inside the subnet")
    if gateway and not subnet:
        raise InvalidInput("'gateway' needs 'subnet'", field="gateway")
    internal = data.get("internal", False)
    if not isinstance(internal, bool):
        raise InvalidInput("'internal' must be true or false", field="internal")
    labels = data.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise InvalidInput("'labels' must be an object of strings", field="labels")
    host = scheduling.host_for_resource(team, data.get("host") or None)
    if Network.objects.filter(team=team, host=host, name=name).exists():
        raise Conflict(f"network {name} already exists on host {host.name}")
    report = _call(host, "agent.network_create",
                   [engine_name(team, name), subnet, gateway, internal])
    try:
        with transaction.atomic():
            return Network.objects.create(
                team=team, host=host, name=name, engine_name=engine_name(team, name),
                bridge=report["bridge"], subnet=report["subnet"], gateway=report["gateway"],
                internal=internal, labels=labels,
            )
    except IntegrityError:
        raise Conflict(f"network {name} already exists on host {host.name}") from None


def _optional(data: dict, key: str, pattern: re.Pattern, what: str) -> str | None:
    value = data.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidInput(f"invalid {key} {value!r}: {what}", field=key)
    return value


def remove_network(network: Network) -> None:
    """``docker network rm``: refused (409) while a container is attached, or named it
    at create and has not been reported yet."""
    names = {m.container.name for m in attached(network)}
    rows = Container.objects.filter(host=network.host).values_list("name", "options")
    names |= {name for name, options in rows
              if any(n.get("name") == network.engine_name
                     for n in (options or {}).get("networks") or [])}
    if names:
        raise Conflict(f"network {network.name} has attached containers: "
                       f"{', '.join(sorted(names))}")
    with contextlib.suppress(NotFound):  # gone from the host already: only the row is left
        _call(network.host, "agent.network_remove", [network.engine_name])
    Network.objects.filter(pk=network.pk).delete()


def attached(network: Network) -> list[ContainerNetwork]:
    rows = ContainerNetwork.objects.filter(container__host=network.host).select_related(
        "container")
    return [row for row in rows if network.engine_name in (row.networks or {})]


def inspect_network(network: Network) -> dict:
    """The network with its members and their addresses, as their agent reported them."""
    members = []
    for row in attached(network):
        link = row.networks[network.engine_name]
        members.append({"container": row.container.id, "name": row.container.name,
                        "ip": link.get("ip"), "prefixlen": link.get("prefixlen"),
                        "mac": link.get("mac"), "aliases": link.get("aliases") or []})
    return {"members": sorted(members, key=lambda m: m["name"])}


# ---- connect and disconnect ----------------------------------------------------------------


def connect(network: Network, data: Any) -> dict:
    """``docker network connect``: plug a created or running container in; its report."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    container = _container(network, data.get("container"))
    extra = {"aliases": parse_aliases(data.get("aliases") or [])}
    if data.get("ip") not in (None, ""):
        extra["ip"] = _optional(data, "ip", ADDRESS, "an IPv4 address in the network's subnet")
    if data.get("mac") not in (None, ""):
        extra["mac"] = _optional(data, "mac", MAC, "six hex pairs such as 02:42:ac:11:00:02")
    report = _call(network.host, "agent.network_connect", [container.id, network.as_spec(**extra)])
    _store_choice(container, add=network.as_spec(**extra))
    _store_report(container.id, report)
    return report


def disconnect(network: Network, data: Any) -> dict:
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    container = _container(network, data.get("container"))
    report = _call(network.host, "agent.network_disconnect", [container.id, network.engine_name])
    _store_choice(container, remove=network.engine_name)
    _store_report(container.id, report)
    return report


def _container(network: Network, ref: Any) -> Container:
    if not isinstance(ref, str) or not ref:
        raise InvalidInput("'container' must be a container id or name", field="container")
    rows = Container.objects.filter(team=network.team)
    container = rows.filter(name=ref).first() or rows.filter(pk=ref).first()
    if container is None and len(ref) >= 12:
        matches = list(rows.filter(pk__startswith=ref)[:2])
        container = matches[0] if len(matches) == 1 else None
    if container is None:
        raise NotFound(f"no such container: {ref}")
    if container.host_id != network.host_id:
        raise Conflict(f"container {container.name} is on host {container.host.name}, "
                       f"network {network.name} on {network.host.name}")
    if container.state in DETACHED_STATES:
        raise Conflict(f"container {container.name} is {container.state}")
    return container


@transaction.atomic
def _store_choice(container: Container, add: dict | None = None, remove: str | None = None):
    row = Container.objects.select_for_update().get(pk=container.pk)
    options = dict(row.options or {})
    kept = [n for n in options.get("networks") or [] if n["name"] not in (remove, (add or {})
                                                                          .get("name"))]
    options["networks"] = kept + ([add] if add else [])
    Container.objects.filter(pk=row.pk).update(options=options)


def _store_report(container_id: str, report: dict) -> None:
    rows = ContainerNetwork.objects.filter(pk=container_id)
    fields = {"networks": report.get("networks") or {}, "ports": report.get("ports") or []}
    if not rows.update(**fields):
        try:
            with transaction.atomic():
                ContainerNetwork.objects.create(container_id=container_id,
                                                mode=report.get("network_mode") or "", **fields)
        except IntegrityError:
            rows.update(**fields)


# ---- a new container's choice, and reports ----------------------------------------------------


def host_for_network(team, data: dict) -> str | None:
    """The host of the team's network a new container names, to place it there."""
    name = data.get("network")
    if not isinstance(name, str) or name in MODES or data.get("host"):
        return None
    hosts = list(Network.objects.filter(team=team, name=name).values_list("host__name",
                                                                          flat=True)[:2])
    return hosts[0] if len(hosts) == 1 else None


def prepare_network(team, host: Host, options: dict) -> dict:
    """The container's options with its network resolved for its host: a mode as is,
    a team network as the spec the agent needs (bridge, subnet, gateway, aliases)."""
    name = options.get("network") or DEFAULT_NETWORK
    if name in MODES:
        if options.get("network_aliases") and name != DEFAULT_NETWORK:
            raise InvalidInput(f"network {name} has no aliases", field="network_aliases")
        return options
    network = Network.objects.filter(team=team, host=host, name=name).first()
    if network is None:
        raise InvalidInput(f"network {name!r} not found on host {host.name}", field="network")
    spec = network.as_spec(aliases=list(options.get("network_aliases") or []))
    return {**options, "networks": [spec]}


def record_report(container_id: str, report: dict) -> None:
    """Keep the addresses and ports of an applied container report (seq-ordered)."""
    networks, ports, seq = report.get("networks"), report.get("ports"), report.get("seq")
    if not isinstance(networks, dict) or not isinstance(ports, list) or not isinstance(seq, int):
        return
    fields = {"seq": seq, "mode": str(report.get("network_mode") or "")[:140],
              "networks": networks, "ports": [p for p in ports if isinstance(p, dict)]}
    if ContainerNetwork.objects.filter(pk=container_id, seq__lt=seq).update(**fields):
        return
    if not ContainerNetwork.objects.filter(pk=container_id).exists():
        try:
            with transaction.atomic():
                ContainerNetwork.objects.create(container_id=container_id, **fields)
        except IntegrityError:
            ContainerNetwork.objects.filter(pk=container_id, seq__lt=seq).update(**fields)


def container_network(user, container_id: str) -> dict:
    """A container's network as its agent last reported it (before that: as asked)."""
    visible = restrict_to_teams(Container.objects.all(), user)
    container = visible.filter(pk=container_id).first()
    if container is None:
        raise NotFound(f"no such container: {container_id}")
    row = ContainerNetwork.objects.filter(pk=container.pk).first()
    if row is not None:
        return {"network_mode": row.mode, "networks": row.networks, "ports": row.ports}
    options = container.options or {}
    return {"network_mode": options.get("network") or DEFAULT_NETWORK, "networks": {},
            "ports": list(options.get("ports") or [])}


def published_ports(container: Container) -> list[dict]:
    """The host ports the agent bound for the container (ephemeral ones filled in)."""
    row = ContainerNetwork.objects.filter(pk=container.pk).first()
    return list(row.ports) if row else []
