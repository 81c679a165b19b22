"""Each isolation property, checked from inside a container."""

import hashlib
import io
import shutil
import subprocess
import sys
import tarfile

import pytest

from workers.engine.archive import import_rootfs
from workers.engine.bootstrap import BUSYBOX_REFERENCE, build_layer, find_busybox
from workers.engine.runtime import RuntimeError_

pytestmark = pytest.mark.usefixtures("needs_root")

PROBE = r"""
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
static void report(const char *what, long r) {
    printf("%s %s\n", what, r < 0 ? strerror(errno) : "allowed");
}
int main(void) {
    long r = syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3, 0);
    printf("keyctl %s\n", r < 0 ? strerror(errno) : "allowed");
    r = syscall(SYS_ptrace, 0 /* PTRACE_TRACEME */, 0, 0, 0);
    printf("ptrace %s\n", r < 0 ? strerror(errno) : "allowed");
    char params[120] = {0};
    r = syscall(425 /* io_uring_setup */, 1, params);
    printf("io_uring %s\n", r < 0 ? strerror(errno) : "allowed");
    r = syscall(999);  /* beyond every syscall table: refused as runc refuses it */
    printf("unknown %s\n", r < 0 ? strerror(errno) : "allowed");
    report("socket-inet", syscall(SYS_socket, 2 /* AF_INET */, 1, 0));
    report("socket-unix", syscall(SYS_socket, 1 /* AF_UNIX */, 1, 0));
    report("socket-netlink", syscall(SYS_socket, 16 /* AF_NETLINK */, 3, 0));
    report("socket-39", syscall(SYS_socket, 39 /* AF_NFC */, 1, 0));
    report("socket-vsock", syscall(SYS_socket, 40 /* AF_VSOCK */, 1, 0));
    report("socket-alg", syscall(SYS_socket, 38 /* AF_ALG */, 5, 0));
    /* the kernel reads an int: the high word must not hide AF_VSOCK */
    report("socket-vsock-high", syscall(SYS_socket, 0x100000028L, 1, 0));
    report("personality-query", syscall(SYS_personality, 0xffffffffL));
    report("personality-linux", syscall(SYS_personality, 0x0L));
    report("personality-norandom", syscall(SYS_personality, 0x0040000L));
    char here[4] = "abc", there[4] = {0};
    struct iovec local = {there, 3}, remote = {here, 3};
    report("process_vm_readv", syscall(SYS_process_vm_readv, getpid(), &local, 1, &remote, 1, 0));
    return 0;
}
"""


def run(runtime, *args, name="c1", image=BUSYBOX_REFERENCE, **spec):
    runtime.create(name, {"image": image, "args": list(args), **spec})
    runtime.start(name)
    assert runtime.wait(name, 20)
    return runtime.state(name), runtime.logs(name)


@pytest.fixture(scope="module")
def probe_binary(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("gcc is needed to build the syscall probe")
    directory = tmp_path_factory.mktemp("probe")
    (directory / "probe.c").write_text(PROBE)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(directory / "probe"),
                    str(directory / "probe.c")], check=True)
    return (directory / "probe").read_bytes()


def image_with(store, files: dict[str, bytes], reference: str, symlinks=None) -> str:
    """busybox plus extra files (and symlinks), imported as a one-layer image."""
    base = tarfile.open(fileobj=io.BytesIO(build_layer(find_busybox())))  # noqa: SIM115
    out = io.BytesIO()
    replaced = set(files) | set(symlinks or {})
    with tarfile.open(fileobj=out, mode="w") as archive:
        for member in base.getmembers():
            if member.name in replaced:
                continue
            archive.addfile(member, base.extractfile(member) if member.isfile() else None)
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    out.seek(0)
    return import_rootfs(store, out, reference).reference


def test_seccomp_filter_matches_dockers_default_profile(runtime, store, probe_binary):
    image = image_with(store, {"probe": probe_binary}, "probe:1")
    _, output = run(runtime, "sh", "-c",
                    "grep Seccomp: /proc/self/status; /probe; "
                    "unshare -m true 2>/dev/null || echo unshare-denied; "
                    "mount -t tmpfs t /mnt 2>/dev/null || echo mount-denied", image=image)
    assert "Seccomp:\t2" in output
    assert "keyctl Operation not permitted" in output
    assert "ptrace allowed" in output and "process_vm_readv allowed" in output  # kernel >= 4.8
    assert "io_uring Operation not permitted" in output
    assert "unknown Function not implemented" in output
    assert "unshare-denied" in output and "mount-denied" in output
    for family in ("inet", "unix", "netlink"):
        assert f"socket-{family} allowed" in output
    assert "socket-39 Operation not permitted" not in output  # AF_NFC is not refused
    for family in ("vsock", "alg", "vsock-high"):
        assert f"socket-{family} Operation not permitted" in output
    assert "personality-query allowed" in output and "personality-linux allowed" in output
    # Refused by the filter's default, as libseccomp cannot say "none of these" in one rule.
    assert "personality-norandom Function not implemented" in output


DEVICE_SCRIPT = (
    "mknod /tmp/k c 1 11; echo x > /tmp/k || echo kmsg-refused; "
    "mknod /tmp/b b 7 0; head -c1 /tmp/b >/dev/null || echo block-refused; "
    "echo x > /dev/null && echo null-ok; head -c3 /dev/zero | wc -c; "
    "head -c3 /dev/urandom | wc -c; head -c3 /dev/full | wc -c; "
    "echo x > /dev/full || echo full-is-full"
)


def test_device_nodes_the_container_makes_do_not_open(runtime):
    _, output = run(runtime, "sh", "-c", DEVICE_SCRIPT + " 2>&1")
    assert "kmsg-refused" in output and "block-refused" in output
    # EPERM either way: from the device cgroup, or (v2) from mknod without CAP_MKNOD.
    assert "Operation not permitted" in output
    assert "null-ok" in output and "full-is-full" in output
    assert output.count("3\n") == 3  # zero, urandom and full read as usual


def test_unconfined_seccomp_is_an_option(runtime):
    _, output = run(runtime, "grep", "Seccomp:", "/proc/self/status", seccomp="unconfined")
    assert output.split() == ["Seccomp:", "0"]


def test_no_new_privileges_option(runtime):
    _, plain = run(runtime, "grep", "NoNewPrivs", "/proc/self/status")
    _, strict = run(runtime, "grep", "NoNewPrivs", "/proc/self/status", name="c2",
                    no_new_privileges=True)
    assert plain.split()[-1] == "0" and strict.split()[-1] == "1"


def test_user_is_resolved_from_the_images_own_files(runtime):
    _, output = run(runtime, "sh", "-c", "id; echo $HOME; grep CapEff /proc/self/status",
                    user="nobody")
    assert "uid=65534(nobody) gid=65534(nogroup)" in output
    assert "/home" in output
    assert "CapEff:\t0000000000000000" in output
    _, numeric = run(runtime, "id", "-u", name="c2", user="1234:5678")
    assert numeric.strip() == "1234"


def test_unknown_user_is_a_clear_error(runtime):
    state, _ = run(runtime, "true", user="nosuchuser")
    assert "unable to find user nosuchuser" in state["error"]


def test_read_only_root_and_tmpfs(runtime):
    _, output = run(runtime, "sh", "-c",
                    "touch /x 2>/dev/null || echo root-ro; touch /scratch/ok && echo tmpfs-rw; "
                    "grep ' /scratch ' /proc/mounts",
                    read_only=True, tmpfs={"/scratch": "size=1m,mode=1777"})
    assert "root-ro" in output and "tmpfs-rw" in output
    assert "nosuid,nodev,noexec" in output and "size=1024k" in output


def test_namespaced_sysctls_only(runtime):
    _, output = run(runtime, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
                    sysctls={"net.ipv4.ip_unprivileged_port_start": "80"})
    assert output.strip() == "80"
    with pytest.raises(RuntimeError_, match="not namespaced"):
        runtime.create("c2", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                              "sysctls": {"kernel.panic": "1"}})


def test_extra_hosts(runtime):
    _, output = run(runtime, "cat", "/etc/hosts", extra_hosts=["db:10.1.2.3", "v6:[fd00::1]"])
    assert "10.1.2.3\tdb" in output and "fd00::1\tv6" in output
    with pytest.raises(RuntimeError_, match="invalid extra host"):
        runtime.create("c2", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                              "extra_hosts": ["nonsense"]})


def test_init_layer_defeats_symlinked_mount_points(runtime, store, tmp_path):
    target = tmp_path / "host-dir"
    target.mkdir()
    image = image_with(store, {}, "tricky:1", symlinks={
        "proc": "/tmp/fakeproc", "etc/hosts": "/etc/passwd", "dev": str(target)})
    state, output = run(runtime, "sh", "-c", "cat /etc/hosts; ls /dev | head -3; echo $$",
                        image=image)
    assert state["exit_code"] == 0, state
    assert "localhost" in output and "root:x:0:0" not in output
    assert output.split()[-1] == "1"
    assert not any(target.iterdir())


def test_only_stdio_is_open(runtime):
    _, output = run(runtime, "ls", "/proc/self/fd")
    assert output.split() == ["0", "1", "2", "3"]  # 3 is ls's own directory handle


def test_host_python_is_out_of_reach(runtime):
    before = _digest(sys.executable)
    _, output = run(runtime, "sh", "-c",
                    "for p in /proc/[0-9]*; do readlink $p/exe; done; "
                    "echo junk > /proc/self/exe 2>/dev/null || echo exe-write-denied; "
                    "echo junk > /proc/1/exe 2>/dev/null || echo init-write-denied")
    assert "python" not in output
    assert "exe-write-denied" in output and "init-write-denied" in output
    assert _digest(sys.executable) == before


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_a_fifo_as_etc_passwd_fails_the_start_instead_of_hanging(runtime, store):
    base = tarfile.open(fileobj=io.BytesIO(build_layer(find_busybox())))  # noqa: SIM115
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for member in base.getmembers():
            if member.name != "etc/passwd":
                archive.addfile(member, base.extractfile(member) if member.isfile() else None)
        fifo = tarfile.TarInfo("etc/passwd")
        fifo.type = tarfile.FIFOTYPE
        archive.addfile(fifo)
    out.seek(0)
    image = import_rootfs(store, out, "fifo:1").reference
    state, _ = run(runtime, "id", image=image)
    assert state["state"] == "exited" and "not a regular file" in state["error"]
