"""Volumes and mounts in the engine: real containers, real mounts, hostile images."""

import contextlib
import io
import os
import secrets
import subprocess
import tarfile
from pathlib import Path

import pytest

from workers.engine.archive import import_rootfs
from workers.engine.bootstrap import BUSYBOX_REFERENCE, build_layer, find_busybox
from workers.engine.runtime import RuntimeError_
from workers.engine.volumes import NoSuchVolume, VolumeError, VolumeInUse, disk_usage

pytestmark = pytest.mark.usefixtures("needs_root")


def run(runtime, *args, name="c1", image=BUSYBOX_REFERENCE, **spec):
    runtime.create(name, {"image": image, "args": list(args), **spec})
    runtime.start(name)
    assert runtime.wait(name, 20)
    return runtime.state(name), runtime.logs(name)


def volume(name, target, read_only=False, options=""):
    return {"type": "volume", "source": name, "target": target, "read_only": read_only,
            "options": options}


def bind(source, target, read_only=False, options=""):
    return {"type": "bind", "source": str(source), "target": target, "read_only": read_only,
            "options": options}


def image_with(store, reference, entries=(), **config):
    """busybox plus extra entries: (name, kind, data/link, mode, uid)."""
    base = tarfile.open(fileobj=io.BytesIO(build_layer(find_busybox())))  # noqa: SIM115
    names = {entry[0] for entry in entries}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member in base.getmembers():
            if member.name not in names:
                archive.addfile(member, base.extractfile(member) if member.isfile() else None)
        for name, kind, data, mode, uid in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = mode, uid, uid, 1_000_000
            if kind == "file":
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            elif kind == "dir":
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.type, info.linkname = tarfile.SYMTYPE, data
                archive.addfile(info)
    out.seek(0)
    return import_rootfs(store, out, reference, config or None).reference


def host_mounts(path) -> list[str]:
    with open("/proc/self/mounts") as mounts:
        return [line for line in mounts if str(path) in line]


@pytest.fixture
def host_tmpfs(tmp_path):
    """A tmpfs mounted on the host under tmp_path, unmounted even when the test fails."""
    mounted = []

    def mount(path: Path) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "berth-test", str(path)],
                       check=True)
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "-l", str(path)], check=False)
    assert host_mounts(tmp_path) == []


# ---- named volumes --------------------------------------------------------------------------


def test_named_volume_outlives_the_container_that_wrote_it(runtime):
    _, output = run(runtime, "sh", "-c", "echo kept > /data/note && echo wrote",
                    mounts=[volume("notes", "/data")])
    assert output == "wrote\n"
    runtime.remove("c1")
    assert runtime.volumes.exists("notes")
    _, output = run(runtime, "cat", "/data/note", name="c2", mounts=[volume("notes", "/data")])
    assert output == "kept\n"
    report = runtime.volumes.inspect("notes")
    assert report["driver"] == "local" and report["in_use_by"] == ["c2"]
    assert report["size"] > 0 and report["created"]


def test_volume_create_inspect_list_and_labels(runtime):
    made = runtime.volumes.create("web-data", labels={"tier": "db"})
    assert made["labels"] == {"tier": "db"} and not made["anonymous"]
    again = runtime.volumes.create("web-data", labels={"other": "x"})
    assert again["created"] == made["created"] and again["labels"] == {"tier": "db"}
    assert [v["name"] for v in runtime.volumes.list()] == ["web-data"]
    assert Path(made["mountpoint"]).is_dir()
    assert oct(os.stat(runtime.volumes.root).st_mode & 0o777) == oct(0o700)
    for bad in ("a", "../x", "a/b", ".hidden", "x" * 200):
        with pytest.raises(VolumeError):
            runtime.volumes.create(bad)
    with pytest.raises(NoSuchVolume):
        runtime.volumes.inspect("missing")


def test_removal_is_refused_while_a_container_uses_the_volume(runtime):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                          "mounts": [volume("busy", "/data")]})
    with pytest.raises(VolumeInUse, match="c1"):
        runtime.volumes.remove("busy")
    with pytest.raises(VolumeInUse):
        runtime.volumes.remove("busy", force=True)
    runtime.remove("c1")
    runtime.volumes.remove("busy")
    assert not runtime.volumes.exists("busy")
    runtime.volumes.remove("busy", force=True)  # force: a missing volume is no error
    with pytest.raises(NoSuchVolume):
        runtime.volumes.remove("busy")


def test_prune_removes_unused_anonymous_volumes_unless_told_all(runtime):
    runtime.volumes.create("named-unused")
    anonymous = runtime.volumes.create(anonymous=True)["name"]
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                          "mounts": [volume("", "/scratch"), volume("named-used", "/d")]})
    used_anonymous = runtime.config("c1")["mounts"][0]["volume"]
    (runtime.volumes.data_path(anonymous) / "blob").write_bytes(b"x" * 100_000)
    result = runtime.volumes.prune()
    assert result["deleted"] == [anonymous] and result["reclaimed"] >= 100_000
    result = runtime.volumes.prune(everything=True)
    assert result["deleted"] == ["named-unused"]
    assert sorted(runtime.volumes.names()) == sorted(["named-used", used_anonymous])


def test_disk_usage_counts_hard_links_once(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 40_000)
    before = disk_usage(tmp_path)
    os.link(tmp_path / "a", tmp_path / "b")
    os.symlink("/etc", tmp_path / "c")
    assert disk_usage(tmp_path) == before


# ---- mounts in the container ----------------------------------------------------------------


def test_read_only_mounts_refuse_writes_even_in_submounts(runtime, tmp_path, host_tmpfs):
    source = tmp_path / "src"
    source.mkdir()
    (source / "file").write_text("host\n")
    host_tmpfs(source / "sub")
    script = ("cat /ro/file; echo x > /ro/new || echo refused-top; "
              "echo x > /ro/sub/new || echo refused-sub; echo x > /vol/new || echo refused-vol")
    _, output = run(runtime, "sh", "-c", script,
                    mounts=[bind(source, "/ro", read_only=True),
                            volume("ro-vol", "/vol", read_only=True)])
    assert output.count("Read-only file system") == 3, output
    assert "host\n" in output and "refused-top" in output
    assert "refused-sub" in output and "refused-vol" in output
    assert not (source / "new").exists() and not (source / "sub" / "new").exists()


def test_writable_bind_mount_and_tmpfs_mounts(runtime, tmp_path):
    source = tmp_path / "shared"
    source.mkdir()
    script = ("echo from-container > /shared/out; "
              "grep ' /scratch ' /proc/mounts; echo x > /ro-tmp/f || echo refused")
    _, output = run(runtime, "sh", "-c", script,
                    mounts=[bind(source, "/shared"),
                            {"type": "tmpfs", "target": "/scratch", "options": "size=1m"},
                            {"type": "tmpfs", "target": "/ro-tmp", "read_only": True}])
    assert (source / "out").read_text() == "from-container\n"
    assert "tmpfs /scratch tmpfs rw,nosuid,nodev,noexec" in output and "refused" in output
    assert host_mounts(tmp_path) == []


def test_file_bind_mount_and_missing_source(runtime, tmp_path):
    config = tmp_path / "app.conf"
    config.write_text("setting=1\n")
    _, output = run(runtime, "cat", "/etc/app/app.conf",
                    mounts=[bind(config, "/etc/app/app.conf", read_only=True)])
    assert output == "setting=1\n"
    with pytest.raises(RuntimeError_, match="does not exist"):
        runtime.create("c2", {"image": BUSYBOX_REFERENCE, "args": ["true"],
                              "mounts": [bind(tmp_path / "nope", "/x")]})


def test_bind_within_a_root_never_follows_a_symlink_out_of_it(runtime, tmp_path):
    allowed = tmp_path / "team-root"
    (allowed / "etc").mkdir(parents=True)
    (allowed / "etc" / "passwd").write_text("in-root\n")
    (allowed / "evil").symlink_to("/etc")
    (allowed / "up").symlink_to("../../../..")
    within = {"within": str(allowed)}
    _, output = run(runtime, "sh", "-c", "cat /a/passwd; ls /b", mounts=[
        {**bind(allowed / "evil", "/a", read_only=True), **within},
        {**bind(allowed / "up", "/b", read_only=True), **within},
    ])
    assert output.split() == ["in-root", "etc", "evil", "up"]
    # Without `within` (a site admin's bind) the host's own symlinks are followed.
    _, output = run(runtime, "head", "-c", "5", "/a/passwd", name="c2",
                    mounts=[bind(allowed / "evil", "/a", read_only=True)])
    assert output == "root:"
    with pytest.raises(RuntimeError_, match="not under"):
        runtime.create("c3", {"image": BUSYBOX_REFERENCE, "args": ["true"], "mounts": [
            {**bind("/etc", "/a"), **within}]})


@pytest.mark.parametrize("mount, message", [
    ({"type": "bind", "source": "relative", "target": "/x"}, "absolute host path"),
    ({"type": "volume", "source": "v", "target": "/"}, "other than /"),
    ({"type": "volume", "source": "v", "target": "relative"}, "absolute path"),
    ({"type": "volume", "source": "v", "target": "/a/../../x"}, "absolute path"),
    ({"type": "tmpfs", "target": "/proc/sys"}, "belongs to the kernel"),
    ({"type": "nfs", "source": "v", "target": "/x"}, "type must be"),
    ({"type": "volume", "source": "v", "target": "/x", "options": "exec"}, "unknown volume"),
    ({"type": "volume", "source": "../escape", "target": "/x"}, "invalid volume name"),
])
def test_invalid_mounts_are_refused_at_create(runtime, mount, message):
    with pytest.raises(RuntimeError_, match=message):
        runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["true"], "mounts": [mount]})
    assert runtime.ids() == []


def test_hostile_symlink_targets_land_inside_the_container(runtime, store, tmp_path):
    marker = f"berth-test-{secrets.token_hex(4)}"
    image = image_with(store, "hostile:1", [
        ("evil", "link", "/etc", 0o777, 0),
        ("up", "link", "../../../../..", 0o777, 0),
        ("tmp/deep", "link", "/../../../tmp", 0o777, 0),
    ])
    source = tmp_path / "src"
    source.mkdir()
    (source / "marker").write_text("inside\n")
    script = f"cat /etc/{marker}/marker /{marker}/marker /tmp/{marker}-t/marker; ls -d /etc/x"
    try:
        _, output = run(runtime, "sh", "-c", script, image=image, mounts=[
            bind(source, f"/evil/{marker}"),
            bind(source, f"/up/{marker}", read_only=True),
            bind(source, f"/tmp/deep/{marker}-t"),
            {"type": "tmpfs", "target": "/evil/x"},
        ])
        assert output.startswith("inside\ninside\ninside\n/etc/x"), output
    finally:
        leaked = [Path(f"/etc/{marker}"), Path(f"/{marker}"), Path(f"/tmp/{marker}-t")]
        for path in leaked:
            if path.exists():
                with contextlib.suppress(OSError):
                    path.rmdir()
    assert not any(path.exists() for path in leaked)


# ---- copy-up and anonymous volumes ----------------------------------------------------------


def test_copy_up_fills_a_new_named_volume_with_the_images_content(runtime, store):
    image = image_with(store, "seeded:1", [
        ("srv/app", "dir", None, 0o750, 1000),
        ("srv/app/config", "file", b"seed\n", 0o640, 1000),
        ("srv/app/sub", "dir", None, 0o700, 0),
        ("srv/app/sub/setuid", "file", b"#!/bin/sh\n", 0o4755, 0),
        ("srv/app/passwd-link", "link", "/etc/passwd", 0o777, 1000),
    ])
    _, output = run(runtime, "sh", "-c", "cat /srv/app/config; echo changed > /srv/app/config",
                    image=image, mounts=[volume("seeded", "/srv/app")])
    assert output == "seed\n"
    data = runtime.volumes.data_path("seeded")
    top = os.stat(data)
    assert (top.st_uid, top.st_mode & 0o7777) == (1000, 0o750)
    config = os.stat(data / "config")
    assert (config.st_uid, config.st_gid, config.st_mode & 0o7777) == (1000, 1000, 0o640)
    setuid = os.stat(data / "sub" / "setuid")
    assert (setuid.st_mode & 0o7777, setuid.st_mtime) == (0o4755, 1_000_000)
    assert os.readlink(data / "passwd-link") == "/etc/passwd"
    assert os.lstat(data / "passwd-link").st_uid == 1000
    # Not empty any more: the next container sees what the first one left.
    _, output = run(runtime, "cat", "/srv/app/config", name="c2", image=image,
                    mounts=[volume("seeded", "/srv/app")])
    assert output == "changed\n"


def test_copy_up_never_follows_a_symlinked_image_path_to_the_host(runtime, store):
    # The declared volume is a link to /etc: the copy must be the image's /etc.
    image = image_with(store, "link-volume:1", [("vol", "link", "/etc", 0o777, 0)],
                       Volumes={"/vol": {}})
    runtime.create("c1", {"image": image, "args": ["true"]})
    name = runtime.config("c1")["mounts"][0]["volume"]
    runtime.start("c1")
    assert runtime.wait("c1", 20) and runtime.state("c1")["exit_code"] == 0
    copied = sorted(os.listdir(runtime.volumes.data_path(name)))
    assert "passwd" in copied and "os-release" not in copied and "debian_version" not in copied


def test_nocopy_and_non_empty_volumes_are_not_filled(runtime, store):
    image = image_with(store, "seeded:2", [("opt/x", "dir", None, 0o755, 0),
                                           ("opt/x/f", "file", b"f", 0o644, 0)])
    run(runtime, "true", image=image,
        mounts=[volume("empty-on-purpose", "/opt/x", options="nocopy")])
    assert os.listdir(runtime.volumes.data_path("empty-on-purpose")) == []
    runtime.volumes.create("prefilled")
    (runtime.volumes.data_path("prefilled") / "mine").write_text("mine")
    run(runtime, "true", name="c2", image=image, mounts=[volume("prefilled", "/opt/x")])
    assert os.listdir(runtime.volumes.data_path("prefilled")) == ["mine"]


def test_image_volumes_get_anonymous_volumes_removed_only_when_asked(runtime, store):
    image = image_with(store, "declares:1", [("data", "dir", None, 0o755, 0),
                                             ("data/seed", "file", b"s", 0o644, 0)],
                       Volumes={"/data": {}, "/cache": {}})
    _, output = run(runtime, "sh", "-c", "ls /data; grep -c ' /cache ' /proc/mounts",
                    image=image, mounts=[volume("mine", "/cache")])
    assert output == "seed\n1\n"
    entries = runtime.config("c1")["mounts"]
    anonymous = [m["volume"] for m in entries if m.get("anonymous")]
    assert len(anonymous) == 1 and len(anonymous[0]) == 64
    assert runtime.volumes.inspect(anonymous[0])["anonymous"] is True
    runtime.remove("c1")
    assert runtime.volumes.exists(anonymous[0])
    marked = {**volume("given-anonymous", "/marked"), "anonymous": True}
    run(runtime, "true", name="c2", image=image, mounts=[marked])
    second = [m["volume"] for m in runtime.config("c2")["mounts"] if m.get("anonymous")]
    assert len(second) == 3 and "given-anonymous" in second
    runtime.remove("c2", volumes=True)
    assert not any(runtime.volumes.exists(name) for name in second)
    assert runtime.volumes.exists("mine") and runtime.volumes.exists(anonymous[0])


def test_mounts_leave_nothing_on_the_host(runtime, tmp_path):
    runtime.create("c1", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "100"],
                          "mounts": [volume("live", "/data"), bind(tmp_path, "/host")]})
    runtime.start("c1")
    assert host_mounts(tmp_path / "volumes") == []
    runtime.remove("c1", force=True)
    assert host_mounts(tmp_path) == []
