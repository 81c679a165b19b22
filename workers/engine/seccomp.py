"""A seccomp filter, through libseccomp, equivalent to Docker's default profile.

Like Docker's, it is an allowlist: every syscall this libseccomp knows for the
host's architecture is allowed except the ones Docker's profile refuses
(documented on docs.docker.com, "Seccomp security profiles for Docker", plus
io_uring since Docker 25), which answer EPERM, and clone() with namespace
flags. Some calls are allowed only with some arguments, as in moby's
profiles/seccomp/default.json: socket() for every family but AF_ALG (38) and
AF_VSOCK (40), which answer EPERM; personality() only for the personas that
profile lists (other ones answer ENOSYS, the filter's default: libseccomp
cannot say "none of these" in one rule). ptrace, process_vm_readv and
process_vm_writev are allowed on kernels from 4.8, as there: from 4.8 seccomp
runs after ptrace's changes, so a tracer cannot make a tracee skip the filter.
A syscall newer than libseccomp's table answers ENOSYS, as runc makes it, so
libc falls back to an older call; clone3 answers ENOSYS for the same reason
(its flags are out of the filter's sight, clone's are not). Other
architectures' syscalls (int 0x80, x32) kill the process.
"""

import ctypes
import ctypes.util
import errno
import os

from . import linux as L

BLOCKED = (
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
    "delete_module", "finit_module", "get_kernel_syms", "get_mempolicy", "init_module",
    # io_uring runs operations seccomp never sees; Docker blocks it since 25.0 (moby#46762).
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "ioperm", "iopl", "kcmp", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
    "mbind", "mount", "move_mount", "open_tree", "fsopen", "fsmount", "fsconfig", "fspick",
    "move_pages", "name_to_handle_at", "nfsservctl", "open_by_handle_at", "perf_event_open",
    "pivot_root", "query_module", "quotactl", "reboot", "request_key", "set_mempolicy",
    "setns", "settimeofday", "stime", "swapon", "swapoff", "sysfs", "_sysctl", "umount",
    "umount2", "unshare", "uselib", "userfaultfd", "ustat", "vm86", "vm86old", "syslog",
)
# Allowed from kernel 4.8 on (TRACING_SINCE), refused like BLOCKED before it.
TRACING = ("ptrace", "process_vm_readv", "process_vm_writev")
TRACING_SINCE = (4, 8)
# socket() families refused: AF_ALG (38) and AF_VSOCK (40), as moby's profile since
# v0.2.1. The kernel reads the family (and personality's persona) as 32 bits, so only
# the low word is compared: a 64-bit 0x1_00000028 is AF_VSOCK too.
REFUSED_FAMILIES = (38, 40)
LOW_WORD = 0xFFFFFFFF
# personality() values moby's profile allows: PER_LINUX, PER_LINUX32, UNAME26,
# PER_LINUX32|UNAME26 and 0xffffffff (a query that changes nothing).
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)
NAMESPACE_FLAGS = (L.CLONE_NEWNS, L.CLONE_NEWUTS, L.CLONE_NEWIPC, L.CLONE_NEWUSER,
                   L.CLONE_NEWPID, L.CLONE_NEWNET, L.CLONE_NEWCGROUP)
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_NNP = 3  # libseccomp sets no_new_privs unless told not to
SCMP_FLTATR_CTL_OPTIMIZE = 8
SCMP_ARCH_NATIVE = 0
MAX_SYSCALL = 1024
_libc = ctypes.CDLL(None, use_errno=True)
SYS_SECCOMP = 317  # x86_64
SECCOMP_SET_MODE_FILTER = 1
BPF_INSTRUCTION = 8  # bytes in a struct sock_filter


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
        _lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
        _lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
        _lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                ctypes.c_uint, ctypes.POINTER(ArgCmp)]
        _lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        _lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return _lib


class Program(ctypes.Structure):
    """struct sock_fprog: a compiled filter the kernel takes as it is."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_default_filter: Program | None = None


def default_filter() -> Program:
    """The default filter, compiled once per process: the zygote builds it, shims inherit
    it and load the ready program, instead of libseccomp generating it again each time."""
    global _default_filter
    if _default_filter is None:
        _default_filter = compile_filter(build_default_filter())
    return _default_filter


def compile_filter(context: int) -> Program:
    lib = _libseccomp()
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        if lib.seccomp_export_bpf(context, fd) < 0:
            raise SeccompError("seccomp_export_bpf failed")
        code = os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)
        lib.seccomp_release(context)
    instructions = ctypes.create_string_buffer(code, len(code))
    program = Program(len(code) // BPF_INSTRUCTION, ctypes.addressof(instructions))
    program.instructions = instructions  # kept alive with the program
    return program


def build_default_filter() -> int:
    """The filter, built while the host's libseccomp is still reachable (before pivot_root)."""
    lib = _libseccomp()
    context = lib.seccomp_init(SCMP_ACT_ERRNO(errno.ENOSYS))
    if not context:
        raise SeccompError("seccomp_init failed")
    try:
        # Loaded while the process still has CAP_SYS_ADMIN, so no_new_privs is
        # not needed, and stays the container's own option, as in Docker.
        if lib.seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0) < 0:
            raise SeccompError("seccomp_attr_set failed")
        # A binary tree of syscall numbers: a few comparisons per call, not hundreds.
        lib.seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        blocked = BLOCKED if _kernel_at_least(TRACING_SINCE) else BLOCKED + TRACING
        special = set(blocked) | {"clone", "clone3", "socket", "personality"}
        for number, name in known_syscalls(lib):
            if name not in special:
                _add(lib, context, SCMP_ACT_ALLOW, number)
        deny = SCMP_ACT_ERRNO(errno.EPERM)
        for name in blocked:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # negative: not a syscall on this architecture
                _add(lib, context, deny, number)
        _add_socket_rules(lib, context, deny)
        personality = lib.seccomp_syscall_resolve_name(b"personality")
        for persona in PERSONAS:
            _add(lib, context, SCMP_ACT_ALLOW, personality,
                 ArgCmp(0, SCMP_CMP_MASKED_EQ, LOW_WORD, persona))
        clone = lib.seccomp_syscall_resolve_name(b"clone")
        namespaces = 0
        for flag in NAMESPACE_FLAGS:
            namespaces |= flag
            _add(lib, context, deny, clone, ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag))
        _add(lib, context, SCMP_ACT_ALLOW, clone, ArgCmp(0, SCMP_CMP_MASKED_EQ, namespaces, 0))
    except BaseException:
        lib.seccomp_release(context)
        raise
    return context


def _add_socket_rules(lib, context, deny: int) -> None:
    """socket(): EPERM for the refused families, allowed for every other one.

    Rules of different actions must not overlap, and a rule compares each argument
    once, so the allowed families are written as "the low word differs from every
    refused family": one rule per bit on which the refused families agree (that bit
    differs), plus one per other pattern of the bits on which they disagree.
    """
    socket = lib.seccomp_syscall_resolve_name(b"socket")
    for family in REFUSED_FAMILIES:
        _add(lib, context, deny, socket, ArgCmp(0, SCMP_CMP_MASKED_EQ, LOW_WORD, family))
    differ = 0
    for family in REFUSED_FAMILIES:
        differ |= family ^ REFUSED_FAMILIES[0]
    for bit in range(32):
        mask = 1 << bit
        if not differ & mask:
            other = ~REFUSED_FAMILIES[0] & mask
            _add(lib, context, SCMP_ACT_ALLOW, socket, ArgCmp(0, SCMP_CMP_MASKED_EQ, mask, other))
    refused_patterns = {family & differ for family in REFUSED_FAMILIES}
    for pattern in range(differ + 1):
        if pattern & ~differ == 0 and pattern not in refused_patterns:
            _add(lib, context, SCMP_ACT_ALLOW, socket,
                 ArgCmp(0, SCMP_CMP_MASKED_EQ, differ, pattern))


def _kernel_at_least(wanted: tuple[int, int]) -> bool:
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= wanted
    except (IndexError, ValueError):
        return False


def known_syscalls(lib) -> list[tuple[int, str]]:
    """(number, name) of every syscall libseccomp knows on the native architecture."""
    found = []
    for number in range(MAX_SYSCALL):
        pointer = lib.seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, number)
        if pointer:
            found.append((number, ctypes.string_at(pointer).decode()))
            _libc.free(ctypes.c_void_p(pointer))
    return found


def load(program: Program) -> None:
    """Install the filter on the calling thread; it is inherited across exec."""
    result = _libc.syscall(ctypes.c_long(SYS_SECCOMP), ctypes.c_uint(SECCOMP_SET_MODE_FILTER),
                           ctypes.c_uint(0), ctypes.byref(program))
    if result < 0:
        raise SeccompError(f"seccomp: {os.strerror(ctypes.get_errno())}")


def _add(lib, context, action: int, number: int, *conditions: ArgCmp) -> None:
    array = (ArgCmp * len(conditions))(*conditions) if conditions else None
    result = lib.seccomp_rule_add_array(context, action, number, len(conditions), array)
    if result < 0:
        raise SeccompError(f"seccomp rule for syscall {number} failed: {-result}")
