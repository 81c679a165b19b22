"""A sealed in-memory copy of the host's Python interpreter (the CVE-2019-5736 class).

Shims and exec children are forks of the zygote: at their execve into the
container's command they are still Python, so a container script starting with
`#!/proc/self/exe` makes the kernel run that binary inside the container, where
/proc/<pid>/exe would then lead back to it. The zygote therefore runs from this
copy, as runc runs its init from a cloned binary: a memfd, sealed so that
nothing can write, shrink, grow or re-seal it. A container reaching it reaches
only the copy. berth-supervisor (native/supervisor.c) makes the same copy in C
for the shim it resumes on a restart.
"""

import contextlib
import errno
import fcntl
import os
import sys

MFD_EXEC = 0x0010  # Linux 6.3: executable even where vm.memfd_noexec=1 makes memfds noexec
F_SEAL_EXEC = 0x0020  # Linux 6.3: its mode cannot change either
SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


def interpreter_copy() -> int:
    """A close-on-exec memfd holding the real interpreter binary, sealed; the caller
    closes it once a child has exec'd it (`/proc/self/fd/<fd>`, with argv[0] kept as
    sys.executable so the child still finds its prefix and the venv)."""
    fd = _executable_memfd("berth-python")
    try:
        _copy(os.path.realpath(sys.executable), fd)
        os.fchmod(fd, 0o511)
        with contextlib.suppress(OSError):  # older kernels: the write seals are what matters
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, F_SEAL_EXEC)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _executable_memfd(name: str) -> int:
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        return os.memfd_create(name, flags | MFD_EXEC)
    except OSError as exc:
        if exc.errno != errno.EINVAL:  # a kernel before 6.3, where every memfd is executable
            raise
        return os.memfd_create(name, flags)


def _copy(path: str, fd: int) -> None:
    with open(path, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        copied = 0
        while copied < size:
            sent = os.sendfile(fd, source.fileno(), copied, size - copied)
            if sent == 0:
                break
            copied += sent
    if copied != size:
        raise OSError(f"copying {path} into a memfd stopped at {copied} of {size} bytes")
