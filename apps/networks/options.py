"""A container's network create options, checked before anything is stored:
``network`` (a mode or the team's network name), ``network_aliases`` and ``ports``.

``ports`` is a list; each item is either a ``docker run -p`` string
(``"8080:80"``, ``"127.0.0.1:8080:80/udp"``, ``"127.0.0.1::80"``, ``"80"``,
``"8000-8002:80-82"``) or an object ``{"container_port", "host_port", "host_ip",
"protocol"}``. Both become objects; a missing or empty host port is ephemeral.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from berth.errors import InvalidInput

NETWORK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ALIAS = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,252}[A-Za-z0-9])?")
PORT_SPEC = re.compile(
    r"(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:]*\]):)?"
    r"(?:(?P<host>\d*(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?P<proto>[a-z]+))?"
)
PROTOCOLS = ("tcp", "udp")
MAX_PORTS = 1024
MAX_ALIASES = 64


def parse_network(value: Any, field: str = "network") -> str:
    if not isinstance(value, str) or not NETWORK_NAME.fullmatch(value):
        what = ("1-64 letters, digits, '_', '.' or '-'" if field == "name" else
                "bridge, host, none, or the name of one of the team's networks")
        raise InvalidInput(f"invalid network {value!r}: {what}", field=field)
    return value


def parse_aliases(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ALIASES:
        raise InvalidInput(
            f"'network_aliases' must be a list of at most {MAX_ALIASES} names",
            field="network_aliases",
        )
    for alias in value:
        if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
            raise InvalidInput(f"invalid network alias {alias!r}", field="network_aliases")
    return list(dict.fromkeys(value))


def parse_ports(value: Any, field: str = "ports") -> list[dict]:
    if not isinstance(value, list):
        raise InvalidInput(
            "'ports' must be a list of \"host:container[/proto]\" strings or objects",
            field=field,
        )
    ports: list[dict] = []
    for item in value:
        ports += _from_text(item, field) if isinstance(item, str) else [_from_object(item, field)]
        if len(ports) > MAX_PORTS:
            raise InvalidInput(f"at most {MAX_PORTS} published ports", field=field)
    seen = set()
    for port in ports:
        key = (port["host_ip"], port["host_port"], port["protocol"])
        if port["host_port"] and key in seen:
            raise InvalidInput(
                f"host port {port['host_port']}/{port['protocol']} is published twice",
                field=field,
            )
        seen.add(key)
    return ports


def _from_text(text: str, field: str) -> list[dict]:
    match = PORT_SPEC.fullmatch(text.strip())
    if not match:
        raise InvalidInput(
            f"invalid port {text!r}: [host_ip:][host_port:]container_port[/tcp|udp]",
            field=field,
        )
    protocol = _protocol(match["proto"] or "tcp", field)
    host_ip = _host_ip(match["ip"] or "", field)
    containers = _range(match["container"], field, minimum=1)
    hosts = _range(match["host"], field, minimum=1) if match["host"] else [0] * len(containers)
    if len(hosts) != len(containers):
        raise InvalidInput(
            f"invalid port {text!r}: the host and container ranges differ in length",
            field=field,
        )
    return [{"container_port": c, "protocol": protocol, "host_ip": host_ip, "host_port": h}
            for h, c in zip(hosts, containers, strict=True)]


def _from_object(item: Any, field: str) -> dict:
    if not isinstance(item, dict) or set(item) - {"container_port", "host_port", "host_ip",
                                                   "protocol"}:
        raise InvalidInput(
            "each port object has container_port, and optionally host_port, host_ip, protocol",
            field=field,
        )
    host_port = item.get("host_port")
    return {
        "container_port": _number(item.get("container_port"), field, minimum=1),
        "protocol": _protocol(item.get("protocol") or "tcp", field),
        "host_ip": _host_ip(item.get("host_ip") or "", field),
        "host_port": 0 if host_port in (None, "") else _number(host_port, field, minimum=0),
    }


def _range(text: str, field: str, minimum: int) -> list[int]:
    first, _, last = text.partition("-")
    low = _number(first, field, minimum)
    high = _number(last, field, minimum) if last else low
    if high < low or high - low >= MAX_PORTS:
        raise InvalidInput(f"invalid port range {text!r}", field=field)
    return list(range(low, high + 1))


def _number(value: Any, field: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInput(f"invalid port {value!r}: a number", field=field)
    try:
        number = int(value)
    except ValueError:
        raise InvalidInput(f"invalid port {value!r}: a number", field=field) from None
    if not minimum <= number <= 65535:
        raise InvalidInput(f"invalid port {value!r}: {minimum}-65535", field=field)
    return number


def _protocol(value: Any, field: str) -> str:
    if value not in PROTOCOLS:
        raise InvalidInput(f"invalid protocol {value!r}: tcp or udp", field=field)
    return value


def _host_ip(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"invalid host IP {value!r}", field=field)
    text = value.strip("[]")
    if text in ("", "0.0.0.0", "::"):
        return ""
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        raise InvalidInput(
            f"invalid host IP {value!r}: an IPv4 address (IPv6 is not supported yet)",
            field=field,
        ) from None
    return text
