"""Copy in and out of containers (docker cp), path stat and export, on running and stopped
containers, and the symlink races that must never reach the host."""

import io
import os
import tarfile
import tempfile
import threading
import time

import pytest

from workers.engine import fscopy, inroot
from workers.engine.bootstrap import BUSYBOX_REFERENCE

pytestmark = pytest.mark.usefixtures("needs_root")

MTIME = 1_600_000_000


def start(runtime, script: str, name: str = "c1"):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", script]})
    runtime.start(name)
    return runtime.existing(name)


def wait_for_path(container_dir, path: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fscopy.stat_path(container_dir, path)
        except fscopy.NotFound:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def copy_out(container_dir, path: str) -> tuple[dict, dict[str, tarfile.TarInfo], dict]:
    with tempfile.TemporaryFile() as spool:
        path_stat = fscopy.copy_out(container_dir, path, spool)
        spool.seek(0)
        with tarfile.open(fileobj=spool) as archive:
            members = {m.name: m for m in archive}
            contents = {m.name: archive.extractfile(m).read() for m in members.values()
                        if m.isreg()}
    return path_stat, members, contents


def copy_in(container_dir, path: str, data: bytes, **options) -> None:
    with tempfile.TemporaryFile() as spool:
        spool.write(data)
        spool.seek(0)
        fscopy.copy_in(container_dir, path, spool, **options)


def tree_tar() -> bytes:
    """A tree with owners, odd modes, mtimes, symlinks (relative, absolute, dangling,
    to outside) and a hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        def add(name, kind=tarfile.REGTYPE, data=b"", mode=0o644, uid=0, gid=0, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.uid, info.gid = kind, mode, uid, gid
            info.mtime, info.linkname, info.size = MTIME, link, len(data)
            archive.addfile(info, io.BytesIO(data) if data else None)

        add("tree", tarfile.DIRTYPE, mode=0o750, uid=1234, gid=2345)
        add("tree/run.sh", data=b"#!/bin/sh\necho run\n", mode=0o4755, uid=1, gid=2)
        add("tree/sub", tarfile.DIRTYPE, mode=0o1777)
        add("tree/sub/secret", data=b"s3cret", mode=0o600, uid=1000, gid=1000)
        add("tree/rel", tarfile.SYMTYPE, link="run.sh", uid=7, gid=8)
        add("tree/abs", tarfile.SYMTYPE, link="/etc/passwd")
        add("tree/up", tarfile.SYMTYPE, link="../../../../..")
        add("tree/dangling", tarfile.SYMTYPE, link="/no/such/file")
        add("tree/hard", tarfile.LNKTYPE, link="tree/run.sh")
        add("tree/.wh.not-a-whiteout", data=b"plain")
    return buffer.getvalue()


def check_tree(members: dict, contents: dict, prefix: str = "tree") -> None:
    def member(name):
        return members[f"{prefix}{name}"]

    assert member("").isdir() and member("").mode == 0o750
    assert (member("").uid, member("").gid) == (1234, 2345)
    assert member("").mtime == MTIME
    run = member("/run.sh")
    assert run.mode == 0o4755 and (run.uid, run.gid) == (1, 2) and run.mtime == MTIME
    # One of the two names carries the data, the other links to it (tar order decides).
    stored, linked = sorted([run, member("/hard")], key=lambda m: m.islnk())
    assert stored.isreg() and linked.islnk() and linked.linkname == stored.name
    assert contents[stored.name] == b"#!/bin/sh\necho run\n"
    assert member("/sub").mode == 0o1777
    assert contents[f"{prefix}/sub/secret"] == b"s3cret"
    assert member("/sub/secret").uid == 1000 and member("/sub/secret").mode == 0o600
    assert member("/rel").issym() and member("/rel").linkname == "run.sh"
    assert (member("/rel").uid, member("/rel").gid) == (7, 8)
    assert member("/abs").linkname == "/etc/passwd"
    assert member("/up").linkname == "../../../../.."
    assert member("/dangling").linkname == "/no/such/file"
    assert contents[f"{prefix}/.wh.not-a-whiteout"] == b"plain"


# resolution, without a container
def test_resolution_stays_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("inside")
    (root / "abs").symlink_to("/")
    (root / "up").symlink_to("../../../../..")
    (root / "loop").symlink_to("loop")
    (root / "chain").symlink_to("abs/up/etc")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
    try:
        for path in ("/abs/etc/passwd", "up/etc/passwd", "/../../etc/passwd",
                     "/chain/passwd", "/etc/../../../etc/passwd"):
            resolved = inroot.resolve(root_fd, path)
            try:
                assert resolved.path == "/etc/passwd"
                with open(f"/proc/self/fd/{resolved.fd}") as handle:
                    assert handle.read() == "inside"
            finally:
                resolved.close()
        link = inroot.resolve(root_fd, "/abs", follow=False)
        assert link.path == "/abs" and link.name == "abs"
        link.close()
        with pytest.raises(fscopy.CopyError, match="too many levels"):
            inroot.resolve(root_fd, "/loop")
        with pytest.raises(fscopy.NotFound):
            inroot.resolve(root_fd, "/etc/passwd/x")
        with pytest.raises(fscopy.NotFound):
            inroot.resolve(root_fd, "/nothing/here")
    finally:
        os.close(root_fd)


def test_go_file_modes_and_times():
    assert fscopy.go_file_mode(0o40755) == 2147484141
    assert fscopy.go_file_mode(0o100644) == 420
    assert fscopy.go_file_mode(0o120777) == (1 << 27) | 0o777
    assert fscopy.go_file_mode(0o104755) == (1 << 23) | 0o755
    assert fscopy.go_time(1_600_000_000 * 10**9) == "2020-09-13T12:26:40Z"
    assert fscopy.go_time(1_600_000_000 * 10**9 + 5 * 10**8) == "2020-09-13T12:26:40.5Z"


# running containers
def test_copy_out_of_a_running_container_keeps_modes_owners_and_links(runtime):
    container = start(runtime, "mkdir -p /data/sub; echo hi > /data/f; chown 1000:100 /data/f;"
                      " chmod 4751 /data/f; ln -s f /data/link; ln -s / /data/root;"
                      " ln /data/f /data/hard; mkfifo /data/pipe; touch /ready; sleep 600")
    wait_for_path(container, "/ready")
    path_stat, members, contents = copy_out(container, "/data")
    assert path_stat["name"] == "data" and path_stat["mode"] & (1 << 31)
    assert set(members) == {"data", "data/f", "data/hard", "data/link", "data/root",
                            "data/sub", "data/pipe"}
    assert members["data/f"].mode == 0o4751 and members["data/f"].uid == 1000
    assert members["data/f"].gid == 100 and contents["data/f"] == b"hi\n"
    assert members["data/link"].issym() and members["data/link"].linkname == "f"
    assert members["data/root"].linkname == "/"
    assert members["data/hard"].islnk() and members["data/hard"].linkname == "data/f"
    assert members["data/pipe"].isfifo()


def test_path_stat_of_a_symlink_names_its_target_in_the_container(runtime):
    container = start(runtime, "mkdir /d; ln -s /d /link; ln -s ../../../etc/hostname /x;"
                      " touch /ready; sleep 600")
    wait_for_path(container, "/ready")
    link = fscopy.stat_path(container, "/link")
    assert link["mode"] & (1 << 27) and link["linkTarget"] == "/d" and link["name"] == "link"
    assert fscopy.stat_path(container, "/x")["linkTarget"] == "/etc/hostname"
    followed = fscopy.stat_path(container, "/link/")
    assert followed["mode"] & (1 << 31) and followed["linkTarget"] == ""
    header = fscopy.stat_header(link)
    import base64
    import json

    assert json.loads(base64.b64decode(header))["linkTarget"] == "/d"
    with pytest.raises(fscopy.NotFound):
        fscopy.stat_path(container, "/missing")


def test_copy_in_then_out_of_a_running_container_round_trips_a_tree(runtime):
    container = start(runtime, "sleep 600")
    wait_for_path(container, "/tmp")
    copy_in(container, "/tmp", tree_tar())
    _, members, contents = copy_out(container, "/tmp/tree")
    check_tree(members, contents)
    # It went through the overlay into the writable layer, as the container sees it.
    upper_file = container / "upper" / "tmp" / "tree" / "run.sh"
    assert os.stat(upper_file).st_mode & 0o7777 == 0o4755
    assert not os.path.exists(container / "upper" / "tmp" / "tree" / "not-a-whiteout")


def test_copy_refusals(runtime):
    container = start(runtime, "touch /file; sleep 600")
    wait_for_path(container, "/file")
    with pytest.raises(fscopy.CopyError, match="not a directory"):
        copy_in(container, "/file", tree_tar())
    with pytest.raises(fscopy.NotFound):
        copy_in(container, "/no/such/dir", tree_tar())
    with pytest.raises(fscopy.CopyError, match="kernel filesystem"):
        copy_in(container, "/proc", tree_tar())
    with pytest.raises(fscopy.CopyError, match="kernel filesystem"):
        copy_out(container, "/sys/kernel")
    with pytest.raises(fscopy.CopyError, match="not a tar"):
        copy_in(container, "/tmp", b"this is not a tar archive" * 100)


def test_no_overwrite_dir_non_dir(runtime):
    container = start(runtime, "mkdir /tmp/tree; touch /ready; sleep 600")
    wait_for_path(container, "/ready")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.addfile(tarfile.TarInfo("tree"), io.BytesIO())
    with pytest.raises(fscopy.CopyError, match="cannot overwrite directory"):
        copy_in(container, "/tmp", buffer.getvalue(), no_overwrite_dir_non_dir=True)
    assert fscopy.stat_path(container, "/tmp/tree")["mode"] & (1 << 31)
    copy_in(container, "/tmp", buffer.getvalue())  # tar semantics: the file replaces it
    assert not fscopy.stat_path(container, "/tmp/tree")["mode"] & (1 << 31)


# stopped containers
def test_copy_on_a_created_and_an_exited_container(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE,
                          "args": ["sh", "-c", "cat /tmp/tree/run.sh; ls -ln /tmp/tree/hard"]})
    container = runtime.existing("c1")
    copy_in(container, "/tmp", tree_tar())
    _, members, contents = copy_out(container, "/tmp/tree")
    check_tree(members, contents)
    runtime.start("c1")
    assert runtime.wait("c1", 20)
    output = runtime.logs("c1")
    assert output.startswith("#!/bin/sh\necho run\n")
    assert output.split("\n")[2].split()[:4] == ["-rwsr-xr-x", "2", "1", "2"]
    # Exited: the writable layer is still there to read and to write.
    _, members, contents = copy_out(container, "/tmp/tree/")
    check_tree(members, contents)
    copy_in(container, "/", tree_tar())
    mode = fscopy.stat_path(container, "/tree/sub")["mode"]
    assert mode == (1 << 31) | (1 << 20) | 0o777  # Go's dir and sticky bits
    with open("/proc/self/mounts") as mounts:
        assert str(container) not in mounts.read()


def test_read_only_stopped_container_takes_nothing(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"], "read_only": True})
    container = runtime.existing("c1")
    with pytest.raises(fscopy.CopyError, match="read-only"):
        copy_in(container, "/tmp", tree_tar(), read_only=True)


def test_export_is_the_flattened_filesystem(runtime):
    container = start(runtime, "mkdir /data; echo hi > /data/f; rm /bin/vi; touch /ready;"
                      " sleep 600")
    wait_for_path(container, "/ready")
    for _ in range(2):  # running, then stopped
        with tempfile.TemporaryFile() as spool:
            fscopy.export(container, spool)
            spool.seek(0)
            with tarfile.open(fileobj=spool) as archive:
                names = set(archive.getnames())
                assert archive.extractfile("data/f").read() == b"hi\n"
        assert {"bin/sh", "etc/passwd", "data", "ready", "proc", "dev"} <= names
        assert "bin/vi" not in names
        assert not any(name.startswith(("proc/", "sys/", "dev/")) for name in names)
        runtime.stop("c1", timeout=0)


# races
SWAPPER = ("while true; do rm -rf /x; mkdir -p /x/etc; echo inside > /x/etc/hostname;"
           " rm -rf /x; ln -s / /x; rm -f /x; ln -s ../../../../../.. /x; rm -f /x; done")


def test_symlink_swaps_during_copies_never_reach_the_host(runtime, tmp_path):
    """The container swaps /x between a directory and symlinks to / while copies run:
    every copy either fails or works inside the container; the host is untouched."""
    host_dir = tmp_path / "host-side"
    host_dir.mkdir()
    sentinel = host_dir / "sentinel"
    secret = f"host-only-{os.urandom(8).hex()}"
    sentinel.write_text(secret)
    marker = f"berth-escape-{os.getpid()}"
    relative = str(sentinel).lstrip("/")
    host_before = sorted(os.listdir("/")), sorted(os.listdir(host_dir))
    container = start(runtime, SWAPPER)
    wait_for_path(container, "/tmp")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in ((marker, b"escaped"), (relative, b"PWNED")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    payload = buffer.getvalue()
    outcomes = {"ok": 0, "refused": 0}
    failures: list[BaseException] = []
    stop = threading.Event()

    def copy_loop(action):
        while not stop.is_set():
            try:
                action()
                outcomes["ok"] += 1
            except fscopy.CopyError:
                outcomes["refused"] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                failures.append(exc)
                return

    def read_sentinel():
        _, _, contents = copy_out(container, f"/x/{relative}")
        assert secret.encode() not in b"".join(contents.values())

    def read_tree():
        _, _, contents = copy_out(container, "/x/")
        assert secret.encode() not in b"".join(contents.values())

    actions = [lambda: copy_in(container, "/x", payload), read_sentinel, read_tree,
               lambda: fscopy.stat_path(container, f"/x/{relative}")]
    threads = [threading.Thread(target=copy_loop, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sentinel.read_text() == secret
    assert not os.path.exists(f"/{marker}")
    assert (sorted(os.listdir("/")), sorted(os.listdir(host_dir))) == host_before
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0, outcomes


def test_copy_on_a_paused_container(runtime):
    container = start(runtime, "echo frozen > /f; touch /ready; sleep 600")
    wait_for_path(container, "/ready")
    runtime.pause("c1")
    try:
        _, _, contents = copy_out(container, "/f")
        assert contents == {"f": b"frozen\n"}
        copy_in(container, "/", tree_tar())
        assert fscopy.stat_path(container, "/tree/run.sh")["size"] == 19
    finally:
        runtime.unpause("c1")
