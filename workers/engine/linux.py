"""Thin ctypes wrappers for the syscalls Python 3.11 does not expose."""

import ctypes
import ctypes.util
import errno
import os

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWCGROUP = 0x02000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_STRICTATIME = 1 << 24

MNT_DETACH = 2

SYS_PIVOT_ROOT = 155  # x86_64
SYS_CLONE = 56  # x86_64
SYS_PIDFD_GETFD = 438
SIGCHLD = 17
PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    def enc(value):
        return value.encode() if value is not None else None

    result = _libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))
    _check(result, f"mount {fstype or ''} {source or ''} on {target}")


def umount(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(target.encode(), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    result = _libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT), new_root.encode(), put_old.encode())
    _check(result, "pivot_root")


def fork_into(namespaces: int) -> int:
    """fork(), with the child in new namespaces (pid included): 0 in the child.

    unshare(CLONE_NEWPID) works once per process, so a supervisor that
    restarts its container must clone. With no new stack, clone behaves like
    fork; only single-threaded callers may use it, since no fork handlers run.
    """
    pid = _libc.syscall(ctypes.c_long(SYS_CLONE), ctypes.c_ulong(namespaces | SIGCHLD),
                        ctypes.c_void_p(0), ctypes.c_void_p(0), ctypes.c_void_p(0),
                        ctypes.c_void_p(0))
    return _check(pid, "clone")


def prctl(option: int, arg2: int = 0) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), 0, 0, 0), "prctl")


def pidfd_open(pid: int) -> int | None:
    """A pidfd for `pid`, or None when that process is gone."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    except OSError as exc:
        if exc.errno == errno.ESRCH:
            return None
        raise


def pidfd_getfd(pidfd: int, target_fd: int) -> int:
    """A duplicate of another process's fd `target_fd` (needs ptrace rights over it)."""
    result = _libc.syscall(ctypes.c_long(SYS_PIDFD_GETFD), ctypes.c_int(pidfd),
                           ctypes.c_int(target_fd), ctypes.c_uint(0))
    return _check(result, "pidfd_getfd")
