"""Addresses of one network, leased to containers and kept on disk.

Leases are written (fsync, rename) before the address is used, under a lock
shared by every process of the engine, so no address is handed out twice,
across agent restarts included. New addresses go round the subnet from the
last one given, so a just-released address is not reused at once.
"""

import ipaddress
from pathlib import Path

from .errors import NetworkError
from .files import locked, read_json, write_json


class Pool:
    def __init__(self, directory: Path, network: str, subnet: str, gateway: str):
        self.path = directory / f"{network}.json"
        self.lock = directory / f"{network}.lock"
        self.network = network
        self.subnet = ipaddress.IPv4Network(subnet)
        self.gateway = ipaddress.IPv4Address(gateway)

    def _load(self) -> dict:
        return read_json(self.path) or {"subnet": str(self.subnet), "leases": {}, "last": None}

    def leases(self) -> dict[str, str]:
        return dict(self._load()["leases"])

    def lease(self, owner: str, wanted: str | None = None) -> str:
        with locked(self.lock):
            document = self._load()
            leases = document["leases"]
            for address, holder in leases.items():
                if holder == owner and (wanted is None or wanted == address):
                    return address  # asked again (a retried create): the same lease
            address = self._static(wanted, leases) if wanted else self._next(document)
            leases[address] = owner
            if not wanted:
                document["last"] = address
            write_json(self.path, document)
            return address

    def release(self, owner: str) -> None:
        with locked(self.lock):
            document = self._load()
            kept = {a: h for a, h in document["leases"].items() if h != owner}
            if kept != document["leases"]:
                document["leases"] = kept
                write_json(self.path, document)

    def release_unless(self, owners: set[str]) -> list[str]:
        """Drop leases whose holder is not in `owners` (stale after a crash)."""
        with locked(self.lock):
            document = self._load()
            stale = [a for a, h in document["leases"].items() if h not in owners]
            for address in stale:
                del document["leases"][address]
            if stale:
                write_json(self.path, document)
            return stale

    def _static(self, wanted: str, leases: dict) -> str:
        try:
            address = ipaddress.IPv4Address(wanted)
        except ValueError:
            raise NetworkError(f"invalid IPv4 address {wanted!r}") from None
        if address not in self.subnet or address in self._unusable():
            raise NetworkError(f"address {wanted} is not usable in {self.network} "
                               f"({self.subnet}, gateway {self.gateway})")
        if str(address) in leases:
            raise NetworkError(f"address {wanted} is already in use on network {self.network}")
        return str(address)

    def _unusable(self) -> set:
        return {self.subnet.network_address, self.subnet.broadcast_address, self.gateway}

    def _next(self, document: dict) -> str:
        first = int(self.subnet.network_address) + 1
        last = int(self.subnet.broadcast_address) - 1
        start = int(ipaddress.IPv4Address(document["last"])) + 1 if document["last"] else first
        size = last - first + 1
        unusable = self._unusable()
        for step in range(size):
            candidate = ipaddress.IPv4Address(first + (start - first + step) % size)
            if candidate not in unusable and str(candidate) not in document["leases"]:
                return str(candidate)
        raise NetworkError(f"network {self.network} ({self.subnet}) has no free address")
