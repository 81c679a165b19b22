"""The device allowlist on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices.allow file; the kernel asks the programs attached to a
task's cgroup instead, with the device's type, major, minor and the access
wanted (kernel Documentation/admin-guide/cgroup-v2.rst, "Device controller";
runc does the same in opencontainers/cgroups devices/ebpf_linux.go). The
program is assembled here from the same rules as cgroups.DEVICE_RULES, loaded
with the bpf syscall and attached with BPF_F_ALLOW_MULTI, so a program a parent
cgroup has keeps its say. It stays attached until the cgroup is removed.
"""

import ctypes
import os
import struct

SYS_BPF = 321  # x86_64
BPF_PROG_LOAD, BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
# struct bpf_cgroup_dev_ctx: access_type (access << 16 | type), major, minor
DEVICE_TYPES = {"b": 1, "c": 2}
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}
# eBPF opcodes
LDX_W, MOV64_K, MOV64_X, AND64_K, RSH64_K, JNE_K, EXIT = (
    0x61, 0xB7, 0xBF, 0x57, 0x77, 0x55, 0x95)
R0, R1, R2, R3, R4, R5, R6 = range(7)
_libc = ctypes.CDLL(None, use_errno=True)


class DeviceFilterError(Exception):
    pass


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: str) -> list[bytes]:
    """Instructions that return 1 when the device matches `rule` ("c 1:3 rwm"),
    and otherwise jump past their own end to the next rule."""
    kind, numbers, access = rule.split()
    major, minor = numbers.split(":")
    checks = []  # (instructions before the jump, register, value)
    if kind != "a":
        checks.append(([], R2, DEVICE_TYPES[kind]))
    refused = 7 & ~sum(ACCESS_BITS[letter] for letter in access)
    if refused:
        checks.append(([_insn(MOV64_X, R6, R3), _insn(AND64_K, R6, imm=refused)], R6, 0))
    if major != "*":
        checks.append(([], R4, int(major)))
    if minor != "*":
        checks.append(([], R5, int(minor)))
    tail = [_insn(MOV64_K, R0, imm=1), _insn(EXIT)]
    block: list[bytes] = []
    jumps = []
    for before, register, value in checks:
        block.extend(before)
        jumps.append(len(block))
        block.append((register, value))  # placeholder, patched below
    block.extend(tail)
    for index in jumps:
        register, value = block[index]
        block[index] = _insn(JNE_K, register, off=len(block) - index - 1, imm=value)
    return block


def assemble(rules) -> bytes:
    """The program: allow what any rule allows, refuse everything else."""
    program = [
        _insn(LDX_W, R2, R1, 0),  # access_type
        _insn(MOV64_X, R3, R2),
        _insn(AND64_K, R2, imm=0xFFFF),  # the type
        _insn(RSH64_K, R3, imm=16),  # the access
        _insn(LDX_W, R4, R1, 4),  # major
        _insn(LDX_W, R5, R1, 8),  # minor
    ]
    for rule in rules:
        program.extend(_rule_block(rule))
    program.extend([_insn(MOV64_K, R0, imm=0), _insn(EXIT)])
    return b"".join(program)


def _bpf(command: int, attr: ctypes.Array) -> int:
    result = _libc.syscall(ctypes.c_long(SYS_BPF), ctypes.c_int(command), attr,
                           ctypes.c_uint(len(attr)))
    if result < 0:
        raise DeviceFilterError(f"bpf: {os.strerror(ctypes.get_errno())}")
    return result


def load(rules) -> int:
    """A program fd of the allowlist."""
    code = assemble(rules)
    instructions = ctypes.create_string_buffer(code, len(code))
    license_text = ctypes.create_string_buffer(b"Apache-2.0")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                     ctypes.addressof(instructions), ctypes.addressof(license_text))
    return _bpf(BPF_PROG_LOAD, attr)


def attach(cgroup_dir, rules) -> None:
    """Attach the allowlist to the cgroup directory `cgroup_dir`."""
    program = load(rules)
    try:
        directory = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = ctypes.create_string_buffer(struct.pack(
                "<IIII", directory, program, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI), 32)
            _bpf(BPF_PROG_ATTACH, attr)
        finally:
            os.close(directory)
    finally:
        os.close(program)
