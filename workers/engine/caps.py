"""Cuts capabilities to Docker's default set before exec.

Bounding, permitted and effective keep Docker's 14; inheritable and ambient
are emptied (caps in the inheritable set were CVE-2022-24769).
"""

import ctypes
import struct

from . import linux as L

DEFAULT_CAPABILITIES = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
    "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18,
    "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31,
}
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
SYS_CAPSET = 126  # x86_64


def mask(capabilities) -> int:
    return sum(1 << number for number in capabilities)


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as handle:
        return int(handle.read())


def drop_bounding(keep: set[int], highest: int) -> None:
    """Cut the bounding set and empty the ambient one; `highest` is read before pivot_root."""
    for number in range(highest + 1):
        if number not in keep:
            L.prctl(PR_CAPBSET_DROP, number)
    L._check(L._libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")


def set_process_caps(keep: set[int]) -> None:
    """Effective and permitted = `keep`; inheritable empty."""
    bits = mask(keep)
    header = struct.pack("Ii", LINUX_CAPABILITY_VERSION_3, 0)
    low, high = bits & 0xFFFFFFFF, bits >> 32
    data = struct.pack("IIIIII", low, low, 0, high, high, 0)  # effective, permitted, inheritable
    result = L._libc.syscall(ctypes.c_long(SYS_CAPSET), header, data)
    L._check(result, "capset")
