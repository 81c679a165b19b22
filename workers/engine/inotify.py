"""inotify through ctypes: the agent learns of every state-file change at once."""

import ctypes
import os
import struct

from .linux import _check, _libc

IN_MOVED_TO = 0x00000080
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
_EVENT = struct.Struct("iIII")


class Watcher:
    def __init__(self):
        self.fd = _check(_libc.inotify_init1(IN_CLOEXEC | IN_NONBLOCK), "inotify_init1")
        self._paths: dict[int, str] = {}

    def add(self, path: str, mask: int = IN_MOVED_TO) -> None:
        wd = _check(_libc.inotify_add_watch(self.fd, os.fsencode(path), ctypes.c_uint32(mask)),
                    f"inotify_add_watch {path}")
        self._paths[wd] = path

    def read(self) -> list[tuple[str, str]]:
        """(watched directory, file name) for each event waiting; empty when none."""
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return []
        events, offset = [], 0
        while offset < len(data):
            wd, _mask, _cookie, length = _EVENT.unpack_from(data, offset)
            offset += _EVENT.size
            name = data[offset:offset + length].rstrip(b"\0").decode()
            offset += length
            if wd in self._paths:
                events.append((self._paths[wd], name))
        return events

    def forget(self, path: str) -> None:
        # The kernel drops a watch by itself when its directory is deleted.
        self._paths = {wd: p for wd, p in self._paths.items() if p != path}
