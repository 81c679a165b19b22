"""A user namespace as an option: the container's root is an unprivileged host user."""

import io
import os
import re
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from tests.engine.test_network import net, session_prefix  # noqa: F401 - fixtures
from workers.engine.archive import import_rootfs
from workers.engine.bootstrap import BUSYBOX_REFERENCE, build_layer, find_busybox
from workers.engine.runtime import RuntimeError_

pytestmark = pytest.mark.usefixtures("needs_root")

START = 200000  # not the default range, so the test sees the spec's own numbers
GROUP_START = START + 1000
REMAP = {"uid": START, "gid": GROUP_START, "size": 65536}


def create(runtime, name, *args, **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": list(args), "userns": REMAP,
                          **spec})  # a given "image" replaces busybox


def run(runtime, *args, name="u1", **spec) -> str:
    create(runtime, name, *args, **spec)
    runtime.start(name)
    assert runtime.wait(name, 20)
    state = runtime.state(name)
    assert state["exit_code"] == 0, (state.get("error"), runtime.logs(name))
    return runtime.logs(name)


def host_ids(pid: int) -> tuple[int, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    uid = re.search(r"^Uid:\s+(\d+)", status, re.M).group(1)
    gid = re.search(r"^Gid:\s+(\d+)", status, re.M).group(1)
    return int(uid), int(gid)


def test_root_inside_is_the_ranges_first_id_on_the_host(runtime):
    create(runtime, "u1", "sh", "-c",
           "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
           "grep -E 'Cap(Bnd|Eff)' /proc/self/status; sleep 30")
    state = runtime.start("u1")
    deadline = time.monotonic() + 10
    while runtime.logs("u1").count("\n") < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line.split() for line in runtime.logs("u1").splitlines()]
    assert lines[0] == ["0"] and lines[1] == ["0"]
    assert lines[2] == ["0", str(START), "65536"]
    assert lines[3] == ["0", str(GROUP_START), "65536"]
    # The default 14 capabilities, held in the namespace only.
    assert lines[4] == ["CapEff:", "00000000a80425fb"]
    assert lines[5] == ["CapBnd:", "00000000a80425fb"]
    assert host_ids(state["pid"]) == (START, GROUP_START)
    assert os.readlink(f"/proc/{state['pid']}/ns/user") != os.readlink("/proc/self/ns/user")
    runtime.stop("u1", timeout=0)


def image_with_owned_file(store) -> str:
    """busybox plus /owned, owned by 1234:5678 in the layer."""
    base = tarfile.open(fileobj=io.BytesIO(build_layer(find_busybox())))  # noqa: SIM115
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for member in base.getmembers():
            archive.addfile(member, base.extractfile(member) if member.isfile() else None)
        info = tarfile.TarInfo("owned")
        info.size, info.mode, info.uid, info.gid = 3, 0o640, 1234, 5678
        archive.addfile(info, io.BytesIO(b"abc"))
    out.seek(0)
    return import_rootfs(store, out, "owned:1").reference


def test_image_files_keep_their_owners_and_new_files_land_shifted(runtime, store):
    image = image_with_owned_file(store)
    output = run(runtime, "sh", "-c",
                 "stat -c '%u:%g' /etc/passwd /bin/busybox /tmp /owned; "
                 "echo made > /made-inside; mkdir -p /home/x; chown 1234:5678 /home/x; "
                 "echo extra >> /etc/passwd; stat -c '%u:%g' /etc/passwd /made-inside",
                 image=image)
    assert output.split() == ["0:0", "0:0", "0:0", "1234:5678", "0:0", "0:0"]
    config = runtime.config("u1")
    upper = Path(config["upperdir"])
    for path, (uid, gid) in {"made-inside": (START, GROUP_START),
                             "etc/passwd": (START, GROUP_START),  # copied up by root
                             "home/x": (START + 1234, GROUP_START + 5678)}.items():
        info = os.stat(upper / path)
        assert (info.st_uid, info.st_gid) == (uid, gid), path
    assert (upper / "made-inside").read_text() == "made\n"
    # The image's layer itself is untouched: the idmapping is the mount's, not the disk's.
    [layer] = [Path(d) for d in config["lowerdirs"] if (Path(d) / "owned").exists()]
    info = os.stat(layer / "owned")
    assert (info.st_uid, info.st_gid) == (1234, 5678)
    assert os.stat(layer / "etc/passwd").st_uid == 0


@pytest.fixture
def host_file():
    """A root-owned 0644 file in a directory the container's root may enter (a bind
    source is opened as the namespace's root; pytest's tmp_path sits under 0700)."""
    directory = Path(tempfile.mkdtemp(prefix="berth-userns-"))
    directory.chmod(0o755)
    secret = directory / "host-file"
    secret.write_text("host\n")
    secret.chmod(0o644)
    yield secret
    shutil.rmtree(directory)


def test_host_owned_files_stay_out_of_reach(runtime, host_file):
    script = ("echo owned 2>/dev/null >> /host-file && echo host-file-written; "
              "echo b 2>/dev/null > /proc/sysrq-trigger || echo sysrq-denied; "
              "ls -ln /host-file")
    bind = [{"type": "bind", "source": str(host_file), "target": "/host-file"}]
    output = run(runtime, "sh", "-c", script, mounts=bind)
    assert "host-file-written" not in output and "sysrq-denied" in output
    assert output.splitlines()[-1].split()[2:4] == ["65534", "65534"]  # host root: nobody
    assert host_file.read_text() == "host\n"
    # The same file in a container without a user namespace: its root may write it.
    runtime.create("plain", {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", script],
                             "mounts": bind})
    runtime.start("plain")
    assert runtime.wait("plain", 20)
    assert "host-file-written" in runtime.logs("plain")


def test_dev_proc_and_sys_work_without_mknod(runtime):
    output = run(runtime, "sh", "-c",
                 "head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; "
                 "head -c 8 /dev/urandom | wc -c; ls /sys/class/net; grep -c . /proc/1/status; "
                 "mknod /dev/x c 1 3 2>/dev/null || echo mknod-denied")
    assert output.split() == ["4", "null-ok", "8", "lo", output.split()[4], "mknod-denied"]


@pytest.mark.usefixtures("net")  # this session's link names; its networks purged after
def test_runtime_network_namespace_gets_its_own_sysfs(runtime):
    host_value = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()
    output = run(runtime, "sh", "-c", "ls /sys/class/net; grep ' /sys ' /proc/mounts; "
                 "ip -o -4 addr show eth0 | wc -l; "
                 "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/kernel/shmmni",
                 network_mode="bridge",
                 sysctls={"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "100"})
    names = output.splitlines()[:2]
    assert sorted(names) == ["eth0", "lo"], output  # the container's links, not the host's
    assert "sysfs ro," in output
    # The network sysctl is written by the shim, the IPC one by the namespace's root.
    assert output.split()[-3:] == ["1", "80", "100"]
    assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text() == host_value


def test_exec_enters_the_user_namespace(runtime):
    create(runtime, "u1", "sleep", "30")
    runtime.start("u1")
    process = runtime.exec("u1", {"args": ["sh", "-c", "id -u; cat /proc/self/uid_map; "
                                           "readlink /proc/self/ns/user; readlink /proc/1/ns/user; "
                                           "touch /from-exec"]})
    output = read_all(process.stdout)
    errors = read_all(process.stderr)
    assert process.wait() == 0, errors
    lines = output.split()
    assert lines[:4] == ["0", "0", str(START), "65536"]
    assert lines[4] == lines[5]  # the init's user namespace
    info = os.stat(Path(runtime.config("u1")["upperdir"]) / "from-exec")
    assert (info.st_uid, info.st_gid) == (START, GROUP_START)
    process.close()
    # Another user is that user of the namespace, shifted on the host too.
    process = runtime.exec("u1", {"args": ["sleep", "30"], "user": "nobody"})
    try:
        assert host_ids(process.pid) == (START + 65534, GROUP_START + 65534)
    finally:
        process.kill()
        process.wait()
        process.close()
    runtime.stop("u1", timeout=0)


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_terminal_read_only_root_and_restarts(runtime):
    output = run(runtime, "sh", "-c", "tty; touch /x 2>/dev/null || echo root-ro",
                 tty=True, read_only=True)
    assert output.split() == ["/dev/pts/0", "root-ro"]
    create(runtime, "again", "sh", "-c", "id -u; exit 3", restart="on-failure:1")
    runtime.start("again")
    deadline = time.monotonic() + 20
    while runtime.state("again").get("restart_count") != 1 or \
            runtime.state("again")["state"] != "exited":
        assert time.monotonic() < deadline, runtime.state("again")
        time.sleep(0.05)
    assert runtime.logs("again").split() == ["0", "0"]


def test_default_containers_have_no_user_namespace(runtime):
    runtime.create("plain", {"image": BUSYBOX_REFERENCE, "args": ["cat", "/proc/self/uid_map"]})
    assert runtime.config("plain")["userns"] is None
    runtime.start("plain")
    assert runtime.wait("plain", 20)
    assert runtime.logs("plain").split() == ["0", "0", "4294967295"]


def test_userns_spec_is_checked(runtime):
    for bad, reason in (({"uid": 0}, "within host ids"), ({"size": 10}, "at least"),
                        ({"uid": "x"}, "integer"), ("yes", "true, false or"),
                        ({"uid": 2**32 - 10}, "within host ids")):
        with pytest.raises(RuntimeError_, match=reason):
            runtime.create("bad", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                                   "userns": bad})
    with pytest.raises(RuntimeError_, match="host's network"):
        runtime.create("bad", {"image": BUSYBOX_REFERENCE, "args": ["true"], "userns": True,
                               "network_mode": "host"})
    runtime.create("default", {"image": BUSYBOX_REFERENCE, "args": ["true"], "userns": True})
    assert runtime.config("default")["userns"] == {"uid": 100000, "gid": 100000, "size": 65536}


def test_volumes_are_refused_with_a_reason(runtime):
    create(runtime, "u1", "true", mounts=[{"type": "volume", "source": "", "target": "/data"}])
    runtime.start("u1")
    state = runtime.state("u1")
    assert state["state"] == "exited" and "volumes are not supported" in state["error"]
