"""docker diff, commit and top: the writable layer read back, turned into an image that
runs, and the processes of one container."""

import gzip
import os
import tarfile
import time

import pytest

from workers.engine import changes, commit, fscopy, procs
from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.changes import ADDED, CHANGED, DELETED

pytestmark = pytest.mark.usefixtures("needs_root")

SCRIPT = ("mkdir -p /data/sub; echo hi > /data/sub/f; chown 1000:1000 /data/sub/f;"
          " ln -s sub/f /data/link; rm /bin/vi; rm -rf /var; mkdir /var; echo new > /var/new;"
          " echo extra >> /etc/passwd; touch /ready; sleep 600")


def start(runtime, script: str, name: str = "c1", **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", script], **spec})
    runtime.start(name)
    container = runtime.existing(name)
    deadline = time.monotonic() + 10
    while True:
        try:
            fscopy.stat_path(container, "/ready")
            return container
        except fscopy.NotFound:
            assert time.monotonic() < deadline, runtime.logs(name)
            time.sleep(0.02)


def test_diff_reports_additions_changes_and_deletions_in_docker_order(runtime):
    start(runtime, SCRIPT)
    found = changes.changes(runtime.config("c1"))
    assert found == [
        {"Path": "/bin", "Kind": CHANGED},
        {"Path": "/bin/vi", "Kind": DELETED},
        {"Path": "/data", "Kind": ADDED},
        {"Path": "/data/link", "Kind": ADDED},
        {"Path": "/data/sub", "Kind": ADDED},
        {"Path": "/data/sub/f", "Kind": ADDED},
        {"Path": "/etc/passwd", "Kind": CHANGED},
        {"Path": "/ready", "Kind": ADDED},
        {"Path": "/var", "Kind": DELETED},  # replaced: an opaque directory
        {"Path": "/var/new", "Kind": ADDED},
    ]


def test_diff_of_an_untouched_container_is_empty(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"]})
    assert changes.changes(runtime.config("c1")) == []


def test_lower_lookup_honours_whiteouts_and_opaque_directories(tmp_path):
    top, bottom = tmp_path / "top", tmp_path / "bottom"
    for layer in (top, bottom):
        (layer / "d").mkdir(parents=True)
    (bottom / "d" / "gone").write_text("x")
    (bottom / "d" / "kept").write_text("x")
    (bottom / "o").mkdir()
    (bottom / "o" / "hidden").write_text("x")
    (bottom / "f").mkdir()
    (bottom / "f" / "under-a-file").write_text("x")
    os.mknod(top / "d" / "gone", 0o600 | 0o020000, os.makedev(0, 0))
    (top / "o").mkdir()
    os.setxattr(top / "o", changes.OPAQUE_XATTR, b"y")
    (top / "f").write_text("now a file")
    lowers = [top, bottom]
    assert changes.lower_entry(lowers, ("d", "kept")) is not None
    assert changes.lower_entry(lowers, ("d", "gone")) is None
    assert changes.lower_entry(lowers, ("o", "hidden")) is None
    assert changes.lower_entry(lowers, ("o",)) is not None
    assert changes.lower_entry(lowers, ("f", "under-a-file")) is None


def test_commit_then_run_the_new_image(runtime, store):
    container = start(runtime, SCRIPT)
    record = commit.commit(store, container, "registry.example:5000/team/app:v1",
                           {"Env": ["MODE=committed"], "Labels": {"stage": "test"},
                            "Cmd": ["sh", "-c", "echo $MODE"], "ExposedPorts": {"80/tcp": {}},
                            "WorkingDir": "/data"},
                           author="Ada <ada@example.com>", comment="first commit")
    assert record.reference == "registry.example:5000/team/app:v1"
    config = store.read_json_blob(record.image_id)
    parent = store.resolve(BUSYBOX_REFERENCE)
    assert len(config["rootfs"]["diff_ids"]) == len(parent.chain_ids) + 1
    assert config["author"] == "Ada <ada@example.com>"
    assert config["history"][-1]["comment"] == "first commit"
    assert config["history"][-1]["created_by"].startswith("sh -c mkdir")
    settings = config["config"]
    assert "MODE=committed" in settings["Env"] and any(e.startswith("PATH=")
                                                       for e in settings["Env"])
    assert settings["Labels"] == {"stage": "test"} and settings["ExposedPorts"] == {"80/tcp": {}}
    assert settings["WorkingDir"] == "/data"
    _check_layer(store, record)

    runtime.create("c2", {"image": record.reference,
                          "args": ["sh", "-c", "cat sub/f; ls -ln sub/f; readlink link;"
                                   " test -e /bin/vi || echo vi-gone; ls /var;"
                                   " tail -1 /etc/passwd; echo $MODE"]})
    runtime.start("c2")
    assert runtime.wait("c2", 20)
    lines = runtime.logs("c2").splitlines()
    assert lines[0] == "hi"
    assert lines[1].split()[2:4] == ["1000", "1000"]
    assert lines[2] == "sub/f"
    assert lines[3] == "vi-gone"
    assert lines[4:] == ["new", "extra", "committed"]
    runtime.create("c3", {"image": record.reference})
    runtime.start("c3")
    assert runtime.wait("c3", 20)
    assert runtime.logs("c3") == "committed\n"  # the committed Cmd


def _check_layer(store, record) -> None:
    """Whiteouts are in OCI form in the stored layer blob."""
    with gzip.open(store.blob_path(record.layers[-1]["digest"])) as raw, \
            tarfile.open(fileobj=raw) as archive:
        names = archive.getnames()
    assert "bin/.wh.vi" in names and "var/.wh..wh..opq" in names
    assert "data/sub/f" in names and "var/new" in names
    assert not any(name.startswith(("upper", "/")) for name in names)


def test_commit_keeps_the_containers_command_and_tags_by_id_without_a_reference(
        runtime, store):
    container = start(runtime, "touch /ready; exec sleep 600")
    record = commit.commit(store, container)
    assert record.reference == record.image_id
    assert store.read_json_blob(record.image_id)["config"]["Cmd"] == [
        "sh", "-c", "touch /ready; exec sleep 600"]


def test_commit_refuses_unknown_changes(runtime, store):
    container = start(runtime, "touch /ready; sleep 600")
    with pytest.raises(changes.ChangesError, match="unsupported config change"):
        commit.commit(store, container, "x:1", {"Healthcheck": {}})
    with pytest.raises(changes.ChangesError, match="must be a list"):
        commit.commit(store, container, "x:1", {"Cmd": "echo"})


def test_top_lists_the_container_processes_only(runtime):
    start(runtime, "touch /ready; sleep 601 & sleep 602 & wait")
    start(runtime, "touch /ready; exec sleep 603", name="other")
    deadline = time.monotonic() + 10
    while True:
        listing = procs.top("c1")
        commands = sorted(row[-1] for row in listing["Processes"])
        if len(commands) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert listing["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert commands == ["sh -c touch /ready; sleep 601 & sleep 602 & wait", "sleep 601",
                        "sleep 602"]
    pids = {int(row[1]) for row in listing["Processes"]}
    assert os.getpid() not in pids
    shell = next(row for row in listing["Processes"] if row[-1].startswith("sh"))
    assert shell[0] == "root" and shell[5] == "?"
    assert all(int(row[2]) == int(shell[1]) for row in listing["Processes"] if row != shell)
    aux = procs.top("c1", "aux")
    assert aux["Titles"][:3] == ["USER", "PID", "%CPU"] and len(aux["Processes"]) == 3
    custom = procs.top("c1", "-eo pid,comm")
    assert custom["Titles"] == ["PID", "COMMAND"]
    assert sorted(row[1] for row in custom["Processes"]) == ["sh", "sleep", "sleep"]
    with pytest.raises(procs.TopError):
        procs.top("c1", "-o pid,bogus")
    with pytest.raises(procs.TopError):
        procs.top("c1", "--forest; rm -rf /")
