"""Kernel object names, all derived from one prefix so two engines (or two test
sessions) on one host never touch each other's bridges, veths or chains."""

import hashlib
import ipaddress
import os
import re

from .errors import NetworkError

PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9]{0,6}$")  # leaves room in 15-byte link names
DEFAULT_NETWORK = "bridge"
HOST_MODE = "host"
NONE_MODE = "none"
NETWORK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
DEFAULT_POOL = "10.213.0.0/16"
USER_PREFIXLEN = 24
DEFAULT_PREFIXLEN = 20
# A local Docker's docker0 (172.17.0.0/16) and its first user networks: never ours.
RESERVED = tuple(ipaddress.ip_network(n) for n in ("172.17.0.0/16",))


def prefix() -> str:
    value = os.environ.get("BERTH_NET_PREFIX", "berth")
    if not PREFIX_PATTERN.match(value):
        raise NetworkError(f"BERTH_NET_PREFIX {value!r}: 1-7 lowercase letters and digits")
    return value


def pool() -> ipaddress.IPv4Network:
    text = os.environ.get("BERTH_NETWORK_POOL", DEFAULT_POOL)
    try:
        return ipaddress.IPv4Network(text)
    except ValueError:
        raise NetworkError(f"BERTH_NETWORK_POOL {text!r} is not an IPv4 network") from None


def _digest(*parts: str) -> str:
    return hashlib.sha1("/".join(parts).encode()).hexdigest()


def default_bridge() -> str:
    return f"{prefix()}0"


def user_bridge(network: str) -> str:
    return f"{prefix()}-{_digest('net', network)[:6]}"


def host_veth(container_id: str, network: str) -> str:
    return f"{prefix()}v{_digest(container_id, network)[:7]}"


def peer_veth(container_id: str, network: str) -> str:
    return f"{prefix()}p{_digest(container_id, network)[:7]}"


def chain(role: str) -> str:
    return f"{prefix().upper()}-{role}"


def is_ours(link_name: str) -> bool:
    p = prefix()
    return link_name == f"{p}0" or link_name.startswith((f"{p}-", f"{p}v", f"{p}p"))


def check_network_name(name: str) -> str:
    if not isinstance(name, str) or not NETWORK_NAME.match(name):
        raise NetworkError(f"invalid network name {name!r}")
    return name
