"""Just enough of the DNS wire format (RFC 1035) for the embedded resolver."""

import ipaddress
import struct

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
CLASS_IN = 1
NOERROR, SERVFAIL, NXDOMAIN, REFUSED = 0, 2, 3, 5
TTL = 600


class Malformed(Exception):
    pass


class Question:
    def __init__(self, message: bytes):
        if len(message) < 12:
            raise Malformed("short header")
        self.id, self.flags, qdcount = struct.unpack("!HHH", message[:6])
        if self.flags & 0x8000 or qdcount != 1:
            raise Malformed("not a single query")
        labels, offset = [], 12
        while True:
            if offset >= len(message):
                raise Malformed("truncated name")
            length = message[offset]
            if length == 0:
                offset += 1
                break
            if length & 0xC0:
                raise Malformed("compressed question")
            labels.append(message[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        if offset + 4 > len(message):
            raise Malformed("truncated question")
        self.qtype, self.qclass = struct.unpack("!HH", message[offset:offset + 4])
        self.section = message[12:offset + 4]
        self.name = ".".join(labels).lower()

    def reply(self, rcode: int = NOERROR, addresses: list[str] = (), names: list[str] = ()
              ) -> bytes:
        flags = 0x8000 | 0x0400 | 0x0080 | (self.flags & 0x0100) | rcode  # QR AA RA, RD echoed
        answers = [_answer(TYPE_A, ipaddress.IPv4Address(a).packed) for a in addresses]
        answers += [_answer(TYPE_PTR, _encode_name(n)) for n in names]
        header = struct.pack("!HHHHHH", self.id, flags, 1, len(answers), 0, 0)
        return header + self.section + b"".join(answers)


def _answer(rtype: int, data: bytes) -> bytes:
    return struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, TTL, len(data)) + data


def _encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".") if p) + b"\0"


def servfail(message: bytes) -> bytes | None:
    """A SERVFAIL for whatever query this was, or None if it is no query at all."""
    try:
        return Question(message).reply(SERVFAIL)
    except Malformed:
        return None


def ptr_address(name: str) -> str | None:
    """10.1.2.3 for 3.2.1.10.in-addr.arpa."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[:-len(suffix)].split(".")
    try:
        return str(ipaddress.IPv4Address(".".join(reversed(parts))))
    except ValueError:
        return None
