"""Network endpoints over ``apps.networks.services``: create, list, inspect, remove, prune,
connect, disconnect. The predefined ``bridge``, ``host`` and ``none`` are listed as dockerd
lists them."""

from __future__ import annotations

import hashlib

from apps.dockerapi import lookup, shapes
from apps.dockerapi.errors import DockerError
from apps.dockerapi.http import Reply
from apps.dockerapi.router import Context, call, route
from apps.networks import services
from apps.networks.choices import MODES
from apps.networks.models import Network
from apps.teams.services import can_act, restrict_to_teams
from berth.errors import Conflict, NotFound

PREDEFINED_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


def networks_of(user):
    return restrict_to_teams(Network.objects.select_related("host", "team"), user)


def predefined_id(name: str) -> str:
    return hashlib.sha256(f"berth-network-{name}".encode()).hexdigest()


def find_network(user, name: str) -> Network | str:
    """A team network (by name or id prefix), or the name of a predefined one."""
    for mode in MODES:
        if name in (mode, predefined_id(mode)) or (
            len(name) >= 6 and predefined_id(mode).startswith(name)
        ):
            return mode
    rows = networks_of(user)
    network = rows.filter(name=name).first()
    if network is None and len(name) >= 6:
        matches = [row for row in rows if network_id(row).startswith(name)]
        network = matches[0] if len(matches) == 1 else None
    if network is None:
        raise DockerError(404, f"network {name} not found")
    return network


def network_id(network: Network) -> str:
    return hashlib.sha256(f"berth-network-{network.pk}-{network.engine_name}".encode()).hexdigest()


def network_json(network: Network | str, members: list[dict] | None = None) -> dict:
    if isinstance(network, str):
        return {
            "Name": network,
            "Id": predefined_id(network),
            "Created": shapes.NEVER,
            "Scope": "local",
            "Driver": PREDEFINED_DRIVERS[network],
            "EnableIPv4": True,
            "EnableIPv6": False,
            "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False,
            "Attachable": False,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Containers": {},
            "Options": {},
            "Labels": {},
        }
    containers = {
        member["container"]: {
            "Name": member["name"],
            "EndpointID": "",
            "MacAddress": member.get("mac") or "",
            "IPv4Address": f"{member.get('ip')}/{member.get('prefixlen')}"
            if member.get("ip")
            else "",
            "IPv6Address": "",
        }
        for member in members or []
    }
    return {
        "Name": network.name,
        "Id": network_id(network),
        "Created": shapes.rfc3339(network.created),
        "Scope": "local",
        "Driver": network.driver or "bridge",
        "EnableIPv4": True,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": None,
            "Config": [{"Subnet": network.subnet, "Gateway": network.gateway}],
        },
        "Internal": network.internal,
        "Attachable": False,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": network.bridge},
        "Labels": dict(network.labels or {}),
    }


@route("POST", "/networks/create")
async def create_network(ctx: Context) -> Reply:
    body = await ctx.json_body(required=True)
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object")
    ipam = (body.get("IPAM") or {}).get("Config") or [{}]
    data = {
        "name": body.get("Name"),
        "driver": body.get("Driver") or "bridge",
        "internal": bool(body.get("Internal")),
        "labels": body.get("Labels") or {},
        "subnet": ipam[0].get("Subnet") or None,
        "gateway": ipam[0].get("Gateway") or None,
    }
    try:
        network = await call(services.create_network, ctx.user, data)
    except Conflict:
        raise DockerError(409, f"network with name {data['name']} already exists") from None
    return Reply(201, {"Id": network_id(network), "Warning": ""})


@route("GET", "/networks")
async def list_networks(ctx: Context) -> Reply:
    filters = ctx.filters()
    return Reply(200, await call(_list, ctx.user, filters))


def _list(user, filters: dict[str, list[str]]) -> list[dict]:
    items = [network_json(mode) for mode in MODES]
    items += [network_json(row) for row in networks_of(user).order_by("name")]
    for name in filters.get("name", []):
        items = [item for item in items if name in item["Name"]]
    for value in filters.get("id", []):
        items = [item for item in items if item["Id"].startswith(value)]
    for driver in filters.get("driver", []):
        items = [item for item in items if item["Driver"] == driver]
    for kind in filters.get("type", []):
        items = [item for item in items if (item["Name"] in MODES) == (kind == "builtin")]
    return items


@route("GET", "/networks/(?P<name>[^/]+)")
async def inspect_network(ctx: Context) -> Reply:
    return Reply(200, await call(_inspect, ctx.user, ctx.match["name"]))


def _inspect(user, name: str) -> dict:
    network = find_network(user, name)
    if isinstance(network, str):
        return network_json(network)
    return network_json(network, services.inspect_network(network)["members"])


@route("DELETE", "/networks/(?P<name>[^/]+)")
async def remove_network(ctx: Context) -> Reply:
    await call(_remove, ctx.user, ctx.match["name"])
    return Reply(204)


def _remove(user, name: str) -> None:
    network = find_network(user, name)
    if isinstance(network, str):
        raise DockerError(403, f"{network} is a pre-defined network and cannot be removed")
    lookup.require_act(user, network)
    services.remove_network(network)


@route("POST", "/networks/prune")
async def prune_networks(ctx: Context) -> Reply:
    return Reply(200, {"NetworksDeleted": await call(_prune, ctx.user) or None})


def _prune(user) -> list[str]:
    deleted = []
    for network in networks_of(user):
        if not can_act(user, network.team):
            continue
        try:
            services.remove_network(network)
        except (Conflict, NotFound):
            continue
        deleted.append(network.name)
    return deleted


@route("POST", "/networks/(?P<name>[^/]+)/(?P<verb>connect|disconnect)")
async def connect(ctx: Context) -> Reply:
    body = await ctx.json_body(required=True)
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object")
    await call(_connect, ctx.user, ctx.match["name"], ctx.match["verb"], body)
    return Reply(200)


def _connect(user, name: str, verb: str, body: dict) -> None:
    network = find_network(user, name)
    if isinstance(network, str):
        raise DockerError(400, f"Berth cannot {verb} containers to the {network} network")
    container = lookup.find_container(user, str(body.get("Container") or ""))
    lookup.require_act(user, container)
    if verb == "disconnect":
        services.disconnect(network, {"container": container.id})
        return
    endpoint = body.get("EndpointConfig") or {}
    ipam = endpoint.get("IPAMConfig") or {}
    services.connect(
        network,
        {
            "container": container.id,
            "aliases": endpoint.get("Aliases") or [],
            "ip": ipam.get("IPv4Address") or None,
            "mac": endpoint.get("MacAddress") or None,
        },
    )
