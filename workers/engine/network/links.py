"""Bridges, veth pairs, addresses and routes, through pyroute2's netlink."""

import contextlib
import ipaddress
import os
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import netns
from .errors import NetworkError

ENOENT_CODES = (19, 2)  # ENODEV, ENOENT: already gone


def index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def ensure_bridge(name: str, gateway: str, subnet: str) -> None:
    """The bridge with the gateway address, up; route_localnet on, so published
    ports reached on 127.0.0.1 can be routed into it."""
    prefixlen = ipaddress.IPv4Network(subnet).prefixlen
    with IPRoute() as ipr:
        bridge = index(ipr, name)
        if bridge is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != 17:  # EEXIST: a concurrent create
                    raise NetworkError(f"cannot create bridge {name}: {exc}") from None
            bridge = index(ipr, name)
        present = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"])
                   for a in ipr.get_addr(index=bridge, family=2)}
        for address, length in present - {(gateway, prefixlen)}:  # a bridge's earlier life
            ipr.addr("del", index=bridge, address=address, prefixlen=length)
        if (gateway, prefixlen) not in present:
            ipr.addr("add", index=bridge, address=gateway, prefixlen=prefixlen)
        ipr.link("set", index=bridge, state="up")
    _sysctl(f"net/ipv4/conf/{name}/route_localnet", "1")


def remove_link(name: str) -> None:
    remove_links([name])


def remove_links(link_names: list[str], ipr: IPRoute | None = None) -> None:
    """Delete these links where they exist; one netlink socket for all."""
    if ipr is None:
        with IPRoute() as own:
            return remove_links(link_names, own)
    for name in link_names:
        found = index(ipr, name)
        if found is None:
            continue
        try:
            ipr.link("del", index=found)
        except NetlinkError as exc:
            if exc.code not in ENOENT_CODES:
                raise


def links_named(predicate) -> list[str]:
    with IPRoute() as ipr:
        return [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()
                if predicate(link.get_attr("IFLA_IFNAME"))]


def plug(netns_path: Path, bridge: str, host_name: str, peer_name: str, ifname: str,
         address: str, prefixlen: int, gateway: str | None, mac: str | None) -> str:
    """A veth pair: one end on the bridge, the other `ifname` in the namespace with
    its address (and the default route via `gateway`). Returns the MAC."""
    with IPRoute() as ipr:
        remove_links([host_name, peer_name], ipr)
        bridge_index = index(ipr, bridge)
        if bridge_index is None:
            raise NetworkError(f"bridge {bridge} does not exist")
        # The peer is born in the namespace: moving a link there afterwards waits for
        # the kernel's network synchronisation, tens of milliseconds per container.
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ipr.link("add", ifname=host_name, kind="veth",
                     peer={"ifname": peer_name, "net_ns_fd": fd})
        finally:
            os.close(fd)
        host_index = index(ipr, host_name)
        ipr.link("set", index=host_index, master=bridge_index)
        ipr.link("set", index=host_index, state="up")
    # A container reaching its own published port through the host comes back
    # in on the port it left by.
    _write(Path("/sys/class/net", host_name, "brport", "hairpin_mode"), "1")
    return netns.run_in(netns_path, _configure_inside, peer_name, ifname, address, prefixlen,
                        gateway, mac)


def _configure_inside(peer_name, ifname, address, prefixlen, gateway, mac) -> str:
    with IPRoute() as ipr:
        peer = index(ipr, peer_name)
        changes = {"ifname": ifname}
        if mac:
            changes["address"] = mac
        ipr.link("set", index=peer, **changes)
        ipr.addr("add", index=peer, address=address, prefixlen=prefixlen)
        ipr.link("set", index=peer, state="up")
        if gateway:
            ipr.route("replace", dst="0.0.0.0/0", gateway=gateway)
        return ipr.get_links(peer)[0].get_attr("IFLA_ADDRESS")


def loopback_up() -> None:
    with IPRoute() as ipr:
        ipr.link("set", index=index(ipr, "lo"), state="up")


def set_default_route(netns_path: Path, gateway: str | None) -> None:
    def body():
        with IPRoute() as ipr:
            with contextlib.suppress(NetlinkError):
                ipr.route("del", dst="0.0.0.0/0")
            if gateway:
                ipr.route("replace", dst="0.0.0.0/0", gateway=gateway)
    netns.run_in(netns_path, body)


def routed_networks(exclude: str | None = None) -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the host routes or has an address in, but the default
    route and what is on the link `exclude`."""
    found = []
    with IPRoute() as ipr:
        skipped = index(ipr, exclude) if exclude else None
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get_attr("RTA_DST")
            if dst and route["dst_len"] and route.get_attr("RTA_OIF") != skipped:
                found.append(ipaddress.IPv4Network(f"{dst}/{route['dst_len']}", strict=False))
        for addr in ipr.get_addr(family=2):
            if addr["index"] == skipped:
                continue
            found.append(ipaddress.IPv4Network(
                f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}", strict=False))
    return [n for n in found if not n.is_loopback]


def _sysctl(relative: str, value: str) -> None:
    _write(Path("/proc/sys", relative), value)


def _write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise NetworkError(f"cannot write {path}: {exc.strerror}") from None
