"""One host's networks and its containers' endpoints (see the package docstring)."""

import ipaddress
from pathlib import Path

from . import dns, firewall, links, names, netns, ports
from .errors import NetworkError
from .files import locked, read_json, write_json
from .ipam import Pool

HOST_LOCK = Path("/run/lock/berth-network-subnets.lock")  # shared by every engine on the host
MODES = (names.HOST_MODE, names.NONE_MODE)


class Networks:
    def __init__(self, engine_root: Path):
        self.root = Path(engine_root) / "network"
        self.lock = self.root / "lock"

    # files
    def _network_path(self, name: str) -> Path:
        return self.root / "networks" / f"{names.check_network_name(name)}.json"

    def _endpoint_path(self, container_id: str) -> Path:
        return self.root / "endpoints" / f"{container_id}.json"

    def netns_path(self, container_id: str) -> Path:
        return self.root / "netns" / container_id

    def _pool(self, network: dict) -> Pool:
        return Pool(self.root / "ipam", network["name"], network["subnet"], network["gateway"])

    def networks(self) -> list[dict]:
        directory = self.root / "networks"
        if not directory.is_dir():
            return []
        return sorted((read_json(p) for p in directory.glob("*.json")), key=lambda n: n["name"])

    def get(self, name: str) -> dict | None:
        return read_json(self._network_path(name))

    def endpoint(self, container_id: str) -> dict | None:
        return read_json(self._endpoint_path(container_id))

    def endpoints(self) -> list[dict]:
        directory = self.root / "endpoints"
        if not directory.is_dir():
            return []
        found = (read_json(p) for p in sorted(directory.glob("*.json")))
        return [doc for doc in found if doc]

    def members(self, name: str) -> list[dict]:
        """Containers on network `name`, with their address there."""
        return [{"container_id": doc["container_id"], "name": doc.get("name", ""), **link}
                for doc in self.endpoints() for link in doc["endpoints"]
                if link["network"] == name]

    # networks
    def create(self, name: str, subnet: str | None = None, gateway: str | None = None,
               internal: bool = False, bridge: str | None = None) -> dict:
        """A user-defined bridge network; an existing one of the same name and subnet is
        returned as it is (a retried request), another subnet is refused."""
        if name in MODES:
            raise NetworkError(f"{name!r} is a network mode, not a network name")
        with locked(self.lock):
            return self._ensure({"name": name, "subnet": subnet, "gateway": gateway,
                                 "internal": internal, "bridge": bridge})

    def default(self) -> dict:
        with locked(self.lock):
            return self._ensure({"name": names.DEFAULT_NETWORK})

    def _ensure(self, wanted: dict) -> dict:
        name = wanted["name"]
        existing = self.get(name)
        if existing:
            if wanted.get("subnet") and wanted["subnet"] != existing["subnet"]:
                raise NetworkError(f"network {name} exists with subnet {existing['subnet']}")
            links.ensure_bridge(existing["bridge"], existing["gateway"], existing["subnet"])
            return existing
        with locked(HOST_LOCK):
            network = self._define(wanted)
            links.ensure_bridge(network["bridge"], network["gateway"], network["subnet"])
        write_json(self._network_path(name), network)
        firewall.enable_forwarding()
        self._apply_rules()
        return network

    def _define(self, wanted: dict) -> dict:
        name = wanted["name"]
        default = name == names.DEFAULT_NETWORK
        bridge = wanted.get("bridge") or (names.default_bridge() if default
                                          else names.user_bridge(name))
        if not names.is_ours(bridge):
            raise NetworkError(f"bridge {bridge!r} is not one of Berth's")
        taken = self._taken(bridge)
        if wanted.get("subnet"):
            subnet = _parse_subnet(wanted["subnet"])
            clash = next((t for t in taken if t.overlaps(subnet)), None)
            if clash:
                raise NetworkError(f"subnet {subnet} overlaps {clash}, already in use on "
                                   "this host")
        else:
            length = names.DEFAULT_PREFIXLEN if default else names.USER_PREFIXLEN
            subnet = _free_subnet(names.pool(), length, taken)
        gateway = _gateway(subnet, wanted.get("gateway"))
        return {"name": name, "bridge": bridge, "subnet": str(subnet), "gateway": gateway,
                "internal": bool(wanted.get("internal")), "default": default}

    def _taken(self, own_bridge: str) -> list[ipaddress.IPv4Network]:
        ours = [ipaddress.IPv4Network(n["subnet"]) for n in self.networks()]
        return ours + list(names.RESERVED) + links.routed_networks(exclude=own_bridge)

    def remove(self, name: str) -> None:
        """Remove a network no container is on; a no-op when it does not exist."""
        with locked(self.lock):
            network = self.get(name)
            if network is None:
                return
            if members := self.members(name):
                who = ", ".join(m["name"] or m["container_id"][:12] for m in members)
                raise NetworkError(f"network {name} has active endpoints: {who}")
            self._drop_network(network)
            if not self.networks():  # nothing left to route or resolve
                firewall.remove_all()
                dns.stop(self.root)
                return
            self._apply_rules()
            if dns.running(self.root):
                dns.ensure(self.root)  # let go of the gateway's port 53

    def _drop_network(self, network: dict) -> None:
        links.remove_link(network["bridge"])
        self._network_path(network["name"]).unlink(missing_ok=True)
        for suffix in ("json", "lock"):
            (self.root / "ipam" / f"{network['name']}.{suffix}").unlink(missing_ok=True)

    # containers
    def attach(self, container_id: str, spec: dict) -> dict:
        """Give a new container its network namespace, interfaces, addresses and ports.

        Returns the endpoint document (also saved): `netns` is None for the host
        and none modes, where the shim shares the host's or makes its own.
        """
        # No mode: a namespace of its own with loopback only, as before networks existed;
        # the control plane always says which network it wants.
        mode = spec.get("network_mode") or names.NONE_MODE
        if mode in MODES:
            return {"container_id": container_id, "network_mode": mode, "netns": None,
                    "endpoints": [], "ports": []}
        wanted_ports = ports.normalise(spec.get("ports") or [])
        definitions = _definitions(mode, spec.get("networks") or [])
        with locked(self.lock):
            try:
                return self._attach(container_id, spec, mode, definitions, wanted_ports)
            except BaseException:
                self._release(container_id)
                raise

    def _attach(self, container_id, spec, mode, definitions, wanted_ports) -> dict:
        networks = [self._ensure_known(d) for d in definitions]
        published = [p for doc in self.endpoints() for p in doc["ports"]]
        chosen = ports.assign(wanted_ports, published)
        path = self.netns_path(container_id)
        netns.create(path, setup=links.loopback_up)
        doc = {"container_id": container_id, "name": spec.get("name") or "",
               "hostname": spec.get("hostname") or "", "network_mode": mode,
               "netns": str(path), "endpoints": [], "ports": chosen}
        for network, definition in zip(networks, definitions, strict=True):
            doc["endpoints"].append(self._plug(container_id, doc, network, definition))
        write_json(self._endpoint_path(container_id), doc)
        if chosen:  # else no rule changes, and rendering them reads every endpoint file
            self._apply_rules()
        self._sync_dns(networks)
        return doc

    def _ensure_known(self, definition: dict) -> dict:
        if definition["name"] == names.DEFAULT_NETWORK:
            return self._ensure({"name": names.DEFAULT_NETWORK})
        network = self.get(definition["name"])
        if network is None and not definition.get("subnet"):
            raise NetworkError(f"network {definition['name']} not found")
        return self._ensure(definition)

    def _plug(self, container_id: str, doc: dict, network: dict, definition: dict,
              ifname: str | None = None, routed: bool | None = None) -> dict:
        address = self._pool(network).lease(container_id, definition.get("ip") or None)
        used = {e["ifname"] for e in doc["endpoints"]}
        ifname = ifname or next(f"eth{i}" for i in range(len(used) + 1)
                                if f"eth{i}" not in used)
        if routed is None:
            routed = not any(e["gateway_route"] for e in doc["endpoints"])
        prefixlen = ipaddress.IPv4Network(network["subnet"]).prefixlen
        host_name = names.host_veth(container_id, network["name"])
        mac = links.plug(Path(doc["netns"]), network["bridge"], host_name,
                         names.peer_veth(container_id, network["name"]), ifname, address,
                         prefixlen, network["gateway"] if routed else None,
                         _mac(definition.get("mac")))
        return {"network": network["name"], "bridge": network["bridge"], "ifname": ifname,
                "host_veth": host_name, "ip": address, "prefixlen": prefixlen,
                "subnet": network["subnet"], "gateway": network["gateway"], "mac": mac,
                "aliases": [str(a) for a in definition.get("aliases") or []],
                "gateway_route": routed, "default": network.get("default", False)}

    def connect(self, container_id: str, definition: dict) -> dict:
        """Plug a created or running container into one more network."""
        with locked(self.lock):
            doc = self._require(container_id)
            if any(e["network"] == definition["name"] for e in doc["endpoints"]):
                raise NetworkError(f"container is already on network {definition['name']}")
            network = self._ensure_known(definition)
            try:
                doc["endpoints"].append(self._plug(container_id, doc, network, definition))
            except BaseException:
                self._pool(network).release(container_id)
                links.remove_link(names.host_veth(container_id, network["name"]))
                raise
            write_json(self._endpoint_path(container_id), doc)
            self._apply_rules()
            self._sync_dns([network])
            return doc

    def disconnect(self, container_id: str, name: str) -> dict:
        with locked(self.lock):
            doc = self._require(container_id)
            leaving = next((e for e in doc["endpoints"] if e["network"] == name), None)
            if leaving is None:
                raise NetworkError(f"container is not on network {name}")
            links.remove_link(leaving["host_veth"])
            network = self.get(name)
            if network:
                self._pool(network).release(container_id)
            doc["endpoints"].remove(leaving)
            if leaving["gateway_route"] and doc["endpoints"]:
                doc["endpoints"][0]["gateway_route"] = True
                links.set_default_route(Path(doc["netns"]), doc["endpoints"][0]["gateway"])
            write_json(self._endpoint_path(container_id), doc)
            self._apply_rules()
            return doc

    def _require(self, container_id: str) -> dict:
        doc = self.endpoint(container_id)
        if doc is None or not doc.get("netns"):
            raise NetworkError(f"container {container_id[:12]} has no network namespace "
                               "(host or none mode)")
        return doc

    def release(self, container_id: str) -> None:
        """Take back everything a container held; safe to repeat, and after a crash.

        Only reloading the rules takes the manager's lock: the links and namespace are
        this container's own and IPAM locks itself, so removals run side by side.
        """
        if self._take_back(container_id):
            with locked(self.lock):
                self._apply_rules()

    def _release(self, container_id: str) -> None:
        """``release`` for a caller that holds the lock."""
        if self._take_back(container_id):
            self._apply_rules()

    def _take_back(self, container_id: str) -> bool:
        """Links, addresses, namespace and endpoint file; True when the container held
        published ports, whose rules must go."""
        doc = self.endpoint(container_id)
        networks = self.networks()
        if doc is not None:  # else a crash came before the file: try every network
            on = {link["network"] for link in doc["endpoints"]}
            networks = [n for n in networks if n["name"] in on]
        links.remove_links([names.host_veth(container_id, n["name"]) for n in networks])
        for network in networks:
            self._pool(network).release(container_id)
        netns.remove(self.netns_path(container_id))
        if doc is None:
            return False
        self._endpoint_path(container_id).unlink(missing_ok=True)
        return bool(doc["ports"])

    def _sync_dns(self, networks: list[dict]) -> None:
        """User-defined networks get the embedded resolver on their gateway."""
        if any(not n.get("default") for n in networks):
            try:
                dns.ensure(self.root)
            except OSError as exc:
                raise NetworkError(f"embedded DNS: {exc}") from None

    def revive(self, container_id: str) -> None:
        """Plumb a container again whose namespace is gone (host reboot, engine down):
        the same interfaces, addresses and MACs, from its endpoint file."""
        doc = self.endpoint(container_id)
        if doc is None or not doc.get("netns") or netns.is_mounted(Path(doc["netns"])):
            return
        with locked(self.lock):
            self._revive(doc)

    def _revive(self, doc: dict) -> None:
        path = Path(doc["netns"])
        if netns.is_mounted(path):
            return
        netns.create(path, setup=links.loopback_up)
        plugged = []
        for link in doc["endpoints"]:
            network = self.get(link["network"]) or self._ensure(
                {"name": link["network"], "subnet": link["subnet"],
                 "gateway": link["gateway"], "bridge": link["bridge"]})
            links.ensure_bridge(network["bridge"], network["gateway"], network["subnet"])
            definition = {"ip": link["ip"], "mac": link["mac"], "aliases": link["aliases"]}
            plugged.append(self._plug(doc["container_id"], {**doc, "endpoints": plugged},
                                      network, definition, link["ifname"],
                                      link["gateway_route"]))
        doc["endpoints"] = plugged
        write_json(self._endpoint_path(doc["container_id"]), doc)
        firewall.enable_forwarding()
        self._apply_rules()
        self._sync_dns(self.networks())

    def suspend(self, live: set[str]) -> None:
        """The engine goes down: take the kernel state of containers not running (and,
        with none running, the bridges, rules and resolver); the files stay, and
        `revive` or `restore` plumbs it all again."""
        if not self.root.is_dir():
            return  # this engine never made a network
        with locked(self.lock):
            for doc in self.endpoints():
                if doc["container_id"] in live:
                    continue
                for link in doc["endpoints"]:
                    links.remove_link(link["host_veth"])
                netns.remove(self.netns_path(doc["container_id"]))
            if live:
                return
            for network in self.networks():
                links.remove_link(network["bridge"])
            firewall.remove_all()
            dns.stop(self.root)

    # the kernel's state, from the files
    def _apply_rules(self) -> None:
        docs = []
        for doc in self.endpoints():
            if doc["endpoints"] and doc["ports"]:
                target = doc["endpoints"][0]["ip"]
                docs.append({"container_id": doc["container_id"],
                             "ports": [{**p, "ip": target} for p in doc["ports"]]})
        firewall.apply(self.networks(), docs)

    def restore(self, container_ids: list[str]) -> dict:
        """At agent start: rebuild bridges and rules, drop what no container holds."""
        known = set(container_ids)
        with locked(self.lock):
            removed = {"endpoints": [], "leases": [], "netns": [], "links": []}
            for doc in self.endpoints():
                if doc["container_id"] not in known:
                    self._release(doc["container_id"])
                    removed["endpoints"].append(doc["container_id"])
                elif doc.get("netns"):
                    self._revive(doc)
            firewall.forget_hooks()  # someone may have flushed the built-in chains
            for network in self.networks():
                links.ensure_bridge(network["bridge"], network["gateway"], network["subnet"])
                removed["leases"] += self._pool(network).release_unless(known)
            directory = self.root / "netns"
            for path in directory.iterdir() if directory.is_dir() else []:
                if path.name not in known:
                    netns.remove(path)
                    removed["netns"].append(path.name)
            removed["links"] = self._remove_stray_links()
            if not self.networks():
                firewall.remove_all()  # chains of an earlier life, if any
                return removed
            firewall.enable_forwarding()
            self._apply_rules()
            self._sync_dns(self.networks())
            return removed

    def _remove_stray_links(self) -> list[str]:
        wanted = {n["bridge"] for n in self.networks()}
        wanted |= {e["host_veth"] for doc in self.endpoints() for e in doc["endpoints"]}
        stray = links.links_named(lambda name: names.is_ours(name) and name not in wanted)
        for name in stray:
            links.remove_link(name)
        return stray

    def purge(self) -> None:
        """Remove every container endpoint, network, link and rule of this engine."""
        with locked(self.lock):
            for doc in self.endpoints():
                self._release(doc["container_id"])
            for network in self.networks():
                self._drop_network(network)
            self._remove_stray_links()
            firewall.remove_all()
            dns.stop(self.root)


def _definitions(mode: str, networks: list) -> list[dict]:
    if not isinstance(networks, list) or not all(isinstance(n, dict) for n in networks):
        raise NetworkError("networks must be a list of objects")
    definitions = [dict(n) for n in networks]
    for definition in definitions:
        names.check_network_name(definition.get("name"))
    if not any(d["name"] == mode for d in definitions):
        definitions.insert(0, {"name": mode})
    # The mode's network first: eth0, the default route, the published ports.
    definitions.sort(key=lambda d: d["name"] != mode)
    if len({d["name"] for d in definitions}) != len(definitions):
        raise NetworkError("a network is listed twice")
    return definitions


def _parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        subnet = ipaddress.IPv4Network(text)
    except ValueError:
        raise NetworkError(f"invalid subnet {text!r}: an IPv4 network such as 10.1.0.0/24"
                           ) from None
    if subnet.prefixlen > 29:
        raise NetworkError(f"subnet {text} is too small: /29 or larger")
    return subnet


def _free_subnet(pool, length: int, taken) -> ipaddress.IPv4Network:
    for candidate in pool.subnets(new_prefix=max(length, pool.prefixlen)):
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise NetworkError(f"no free /{length} subnet left in the pool {pool}")


def _gateway(subnet: ipaddress.IPv4Network, wanted: str | None) -> str:
    if not wanted:
        return str(subnet.network_address + 1)
    try:
        gateway = ipaddress.IPv4Address(wanted)
    except ValueError:
        raise NetworkError(f"invalid gateway {wanted!r}") from None
    if gateway not in subnet or gateway in (subnet.network_address, subnet.broadcast_address):
        raise NetworkError(f"gateway {wanted} is not a host address of {subnet}")
    return str(gateway)


def _mac(value) -> str | None:
    if not value:
        return None
    text = str(value).lower()
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdef" for c in p)
                                  for p in parts):
        raise NetworkError(f"invalid MAC address {value!r}")
    if int(parts[0], 16) & 1:
        raise NetworkError(f"MAC address {value} is a multicast address")
    return text

