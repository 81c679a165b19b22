"""Detach keys: the sequence on an attached terminal's input that ends the attach and
leaves the container running (``--detach-keys``, default ctrl-p ctrl-q).

The docker CLI also watches for them on its side; the server does too, as dockerd
does, for clients that do not (the SDK, a raw socket).
"""

from __future__ import annotations

import string

from apps.dockerapi.errors import DockerError

DEFAULT = "ctrl-p,ctrl-q"
CTRL_NAMES = string.ascii_lowercase + "@[\\]^_"


def parse(text: str | None) -> bytes:
    """``ctrl-<letter or @[\\]^_>`` or single characters, comma separated, as moby reads them."""
    keys = bytearray()
    for part in (text or DEFAULT).split(","):
        part = part.strip().lower()
        if len(part) == 1:
            keys.append(ord(part))
        elif part.startswith("ctrl-") and len(part) == 6 and part[5] in CTRL_NAMES:
            keys.append(ord(part[5]) & 0x1F)
        else:
            raise DockerError(400, f"Invalid detach keys ({text}) provided: {part!r} is not "
                                   "ctrl-<letter> or a single character")
    return bytes(keys)


class Watcher:
    """Finds the sequence in input that comes in pieces; what is not part of it passes."""

    def __init__(self, keys: bytes):
        self.keys = keys
        self.held = 0  # how many bytes of the sequence the input ended with so far

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """The bytes to forward, and whether the whole sequence was typed (then what
        followed it is dropped: the client has detached)."""
        out = bytearray()
        for byte in data:
            if byte == self.keys[self.held]:
                self.held += 1
                if self.held == len(self.keys):
                    self.held = 0
                    return bytes(out), True
                continue
            out += self.keys[:self.held]  # a false start: those keys were input after all
            self.held = 0
            if byte == self.keys[0]:
                self.held = 1
                if len(self.keys) == 1:
                    return bytes(out), True
            else:
                out.append(byte)
        return bytes(out), False
