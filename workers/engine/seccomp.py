"""A seccomp filter, through libseccomp, that refuses what Docker's default profile refuses.

Docker documents the significant syscalls its default profile blocks
(docs.docker.com, "Seccomp security profiles for Docker"); this filter returns
EPERM for exactly those, and for clone() with namespace flags, so a container
can neither mount, unshare, change the kernel's keyring, trace, load modules,
reboot nor change the clock. clone3 answers ENOSYS so libc falls back to clone,
whose flags the filter can see.
"""

import ctypes
import ctypes.util
import errno

from . import linux as L

BLOCKED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
    # io_uring runs operations seccomp never sees; Docker blocks it since 25.0 (moby#46762).
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
    "mbind", "mount", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
    "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open",
    "pivot_root", "process_vm_readv", "process_vm_writev", "ptrace", "query_module",
    "quotactl", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday", "stime",
    "swapon", "swapoff", "sysfs", "_sysctl", "umount", "umount2", "unshare", "uselib",
    "userfaultfd", "ustat", "vm86", "vm86old", "syslog",
)
NAMESPACE_FLAGS = (L.CLONE_NEWNS, L.CLONE_NEWUTS, L.CLONE_NEWIPC, L.CLONE_NEWUSER,
                   L.CLONE_NEWPID, L.CLONE_NEWNET, L.CLONE_NEWCGROUP)
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_NNP = 3  # libseccomp sets no_new_privs unless told not to


def SCMP_ACT_ERRNO(code: int) -> int:  # noqa: N802 - libseccomp's macro name
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompError(Exception):
    pass


_lib = None


def _libseccomp():
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
        _lib = ctypes.CDLL(name, use_errno=True)
        _lib.seccomp_init.restype = ctypes.c_void_p
        _lib.seccomp_init.argtypes = [ctypes.c_uint32]
        _lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        _lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                ctypes.c_uint, ctypes.POINTER(ArgCmp)]
        _lib.seccomp_load.argtypes = [ctypes.c_void_p]
        _lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return _lib


_default_filter: int | None = None


def default_filter() -> int:
    """The default filter, built once per process: the zygote builds it, shims inherit it."""
    global _default_filter
    if _default_filter is None:
        _default_filter = build_default_filter()
    return _default_filter


def build_default_filter() -> int:
    """The filter, built while the host's libseccomp is still reachable (before pivot_root)."""
    lib = _libseccomp()
    context = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not context:
        raise SeccompError("seccomp_init failed")
    try:
        # Loaded while the process still has CAP_SYS_ADMIN, so no_new_privs is
        # not needed, and stays the container's own option, as in Docker.
        if lib.seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0) < 0:
            raise SeccompError("seccomp_attr_set failed")
        deny = SCMP_ACT_ERRNO(errno.EPERM)
        for name in BLOCKED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # negative: not a syscall on this architecture
                _add(lib, context, deny, number)
        clone = lib.seccomp_syscall_resolve_name(b"clone")
        for flag in NAMESPACE_FLAGS:
            _add(lib, context, deny, clone, ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag))
        clone3 = lib.seccomp_syscall_resolve_name(b"clone3")
        if clone3 >= 0:
            _add(lib, context, SCMP_ACT_ERRNO(errno.ENOSYS), clone3)
    except BaseException:
        lib.seccomp_release(context)
        raise
    return context


def load(context: int) -> None:
    """Install the filter on the calling thread; it is inherited across exec."""
    result = _libseccomp().seccomp_load(context)
    if result < 0:
        raise SeccompError(f"seccomp_load failed: {-result}")


def _add(lib, context, action: int, number: int, *conditions: ArgCmp) -> None:
    array = (ArgCmp * len(conditions))(*conditions) if conditions else None
    result = lib.seccomp_rule_add_array(context, action, number, len(conditions), array)
    if result < 0:
        raise SeccompError(f"seccomp rule for syscall {number} failed: {-result}")
