"""Published ports: checked, given a host port, and refused when taken."""

import contextlib
import errno
import ipaddress
import socket

from .errors import NetworkError

PROTOCOLS = ("tcp", "udp")
EPHEMERAL_TRIES = 64


def normalise(ports: list) -> list[dict]:
    if not isinstance(ports, list):
        raise NetworkError("ports must be a list")
    return [_one(port) for port in ports]


def _one(port) -> dict:
    if not isinstance(port, dict):
        raise NetworkError(f"invalid port {port!r}")
    protocol = str(port.get("protocol") or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise NetworkError(f"invalid protocol {protocol!r}: use tcp or udp")
    host_ip = str(port.get("host_ip") or "")
    if host_ip in ("0.0.0.0", "::", "[::]"):
        host_ip = ""
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise NetworkError(f"invalid host IP {host_ip!r}: an IPv4 address") from None
    return {"container_port": _number(port.get("container_port"), 1, "container port"),
            "protocol": protocol, "host_ip": host_ip,
            "host_port": _number(port.get("host_port") or 0, 0, "host port")}


def _number(value, minimum: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise NetworkError(f"invalid {what} {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise NetworkError(f"invalid {what} {value!r}") from None
    if not minimum <= number <= 65535:
        raise NetworkError(f"invalid {what} {value!r}: {minimum}-65535")
    return number


def _overlaps(a: dict, b: dict) -> bool:
    return (a["protocol"] == b["protocol"] and a["host_port"] == b["host_port"]
            and (not a["host_ip"] or not b["host_ip"] or a["host_ip"] == b["host_ip"]))


def assign(wanted: list[dict], published: list[dict]) -> list[dict]:
    """Host ports for `wanted`: fixed ones checked against Berth's other ports and the
    host's sockets, ephemeral ones (0) chosen by the kernel. Raises when one is taken."""
    chosen: list[dict] = []
    for port in wanted:
        taken = published + chosen
        if port["host_port"]:
            for other in taken:
                if _overlaps(port, other):
                    raise NetworkError(f"{_label(port)} is already published by another "
                                       "container")
            _check_free(port)
            chosen.append(dict(port))
        else:
            chosen.append(_ephemeral(port, taken))
    return chosen


def _ephemeral(port: dict, taken: list[dict]) -> dict:
    for _ in range(EPHEMERAL_TRIES):
        with _bound(port["protocol"], port["host_ip"], 0) as sock:
            candidate = {**port, "host_port": sock.getsockname()[1]}
        if not any(_overlaps(candidate, other) for other in taken):
            return candidate
    raise NetworkError(f"no free host port for {port['container_port']}/{port['protocol']}")


def _check_free(port: dict) -> None:
    try:
        with _bound(port["protocol"], port["host_ip"], port["host_port"]):
            pass
    except NetworkError:
        raise
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise NetworkError(f"{_label(port)} is already in use on the host") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise NetworkError(f"host IP {port['host_ip']} is not an address of this host"
                               ) from None
        raise NetworkError(f"cannot publish {_label(port)}: {exc.strerror}") from None


@contextlib.contextmanager
def _bound(protocol: str, host_ip: str, number: int):
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        # Lingering TIME_WAIT connections do not hold a port; a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip or "0.0.0.0", number))
        yield sock


def _label(port: dict) -> str:
    return f"host port {port['host_ip'] or '0.0.0.0'}:{port['host_port']}/{port['protocol']}"
