"""A seccomp filter, through libseccomp, equivalent to Docker's default profile.

Like Docker's, it is an allowlist: every syscall this libseccomp knows for the
host's architecture is allowed except the ones Docker's profile refuses
(documented on docs.docker.com, "Seccomp security profiles for Docker", plus
io_uring since Docker 25), which answer EPERM, and clone() with namespace
flags. A syscall newer than libseccomp's table answers ENOSYS, as runc makes
it, so libc falls back to an older call; clone3 answers ENOSYS for the same
reason (its flags are out of the filter's sight, clone's are not). Other
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
        special = set(BLOCKED) | {"clone", "clone3"}
        for number, name in known_syscalls(lib):
            if name not in special:
                _add(lib, context, SCMP_ACT_ALLOW, number)
        deny = SCMP_ACT_ERRNO(errno.EPERM)
        for name in BLOCKED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number >= 0:  # negative: not a syscall on this architecture
                _add(lib, context, deny, number)
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
