"""A corpus of crafted hostile layers: each is refused or neutralised, and nothing
outside the store changes."""

import io
import os
import stat
import tarfile

import pytest

from workers.engine import oci
from workers.engine.store import StoreError
from workers.engine.unpack import OPAQUE_XATTR


def entry(name, kind=tarfile.REGTYPE, data=b"", linkname="", mode=0o644, uid=0, gid=0,
          devmajor=0, devminor=0):
    return dict(name=name, kind=kind, data=data, linkname=linkname, mode=mode, uid=uid,
                gid=gid, devmajor=devmajor, devminor=devminor)


def build(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for e in entries:
            info = tarfile.TarInfo(e["name"])
            info.type, info.linkname, info.mode = e["kind"], e["linkname"], e["mode"]
            info.uid, info.gid = e["uid"], e["gid"]
            info.devmajor, info.devminor = e["devmajor"], e["devminor"]
            info.size = len(e["data"]) if e["kind"] == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(e["data"]) if info.size else None)
    return buffer.getvalue()


@pytest.fixture
def outside(tmp_path):
    """A directory outside the store that hostile layers aim at."""
    target = tmp_path / "outside"
    target.mkdir()
    (target / "victim").write_text("original")
    return target


def unpack(store, entries):
    data = build(entries)
    digest = store.put_blob(data)
    return store.unpack_layer(digest, digest, digest)


def snapshot(path):
    return sorted((str(p), p.lstat().st_mode, p.read_bytes() if p.is_file() and not p.is_symlink()
                   else None) for p in path.rglob("*"))


def hostile(outside):
    victim = str(outside / "victim")
    return {
        "dotdot": [entry("../../outside/victim", data=b"pwned")],
        "dotdot-deep": [entry("a/b/../../../outside/victim", data=b"pwned")],
        "symlink-parent": [entry("link", tarfile.SYMTYPE, linkname=str(outside)),
                           entry("link/victim", data=b"pwned")],
        "symlink-relative-parent": [entry("up", tarfile.SYMTYPE, linkname="../../../.."),
                                    entry(f"up{outside}/victim", data=b"pwned")],
        "hardlink-absolute": [entry("h", tarfile.LNKTYPE, linkname=victim)],
        "hardlink-dotdot": [entry("h", tarfile.LNKTYPE, linkname="../../outside/victim")],
        "hardlink-through-symlink": [entry("link", tarfile.SYMTYPE, linkname=str(outside)),
                                     entry("h", tarfile.LNKTYPE, linkname="link/victim")],
        "whiteout-dotdot": [entry("../.wh.victim")],
        "whiteout-of-parent": [entry(".wh...")],
        "whiteout-of-self": [entry("sub/.wh..")],
    }


@pytest.mark.parametrize("case", ["dotdot", "dotdot-deep", "symlink-parent",
                                  "symlink-relative-parent", "hardlink-absolute",
                                  "hardlink-dotdot", "hardlink-through-symlink",
                                  "whiteout-dotdot", "whiteout-of-parent",
                                  "whiteout-of-self"])
def test_escapes_are_refused_and_leave_nothing(store, busybox, outside, case):
    before, store_before = snapshot(outside), snapshot(store.root)
    with pytest.raises(StoreError, match="refused"):
        unpack(store, hostile(outside)[case])
    assert snapshot(outside) == before
    # Nothing of the store went either (a whiteout of ".." once emptied it).
    assert {p for p, *_ in snapshot(store.root)} >= {p for p, *_ in store_before}
    assert [p.name for p in store.layers.iterdir()] == [busybox.chain_ids[0][7:]]


def test_symlinks_are_stored_as_they_are_and_never_followed(store, outside):
    layer = unpack(store, [
        entry("etc", tarfile.DIRTYPE, mode=0o755),
        entry("etc/shadow", tarfile.SYMTYPE, linkname=str(outside / "victim")),
        entry("etc/shadow", data=b"replaced"),  # a later entry replaces the link itself
        entry("abs", tarfile.SYMTYPE, linkname="/etc/passwd"),
    ])
    assert (layer / "etc" / "shadow").read_bytes() == b"replaced"
    assert not (layer / "etc" / "shadow").is_symlink()
    assert os.readlink(layer / "abs") == "/etc/passwd"
    assert (outside / "victim").read_text() == "original"


def test_device_nodes_are_never_created(store):
    layer = unpack(store, [entry("dev/sda", tarfile.BLKTYPE, devmajor=8, devminor=0),
                           entry("dev/mem", tarfile.CHRTYPE, devmajor=1, devminor=1),
                           entry("ok", data=b"x")])
    assert not (layer / "dev" / "sda").exists()
    assert not (layer / "dev" / "mem").exists()
    assert (layer / "ok").read_bytes() == b"x"


def test_owners_are_numeric_and_modes_kept(store):
    layer = unpack(store, [entry("f", data=b"x", uid=4242, gid=4343, mode=0o4755),
                           entry("d", tarfile.DIRTYPE, uid=7, gid=8, mode=0o1777)])
    info = (layer / "f").stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (4242, 4343, 0o4755)
    info = (layer / "d").stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (7, 8, 0o1777)


def test_whiteouts_become_overlay_whiteouts(store):
    layer = unpack(store, [entry("etc", tarfile.DIRTYPE, mode=0o755),
                           entry("etc/.wh.motd"),
                           entry("var", tarfile.DIRTYPE, mode=0o755),
                           entry("var/.wh..wh..opq"),
                           entry("var/new", data=b"n")])
    whiteout = (layer / "etc" / "motd").lstat()
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0)
    assert os.getxattr(layer / "var", OPAQUE_XATTR) == b"y"
    assert not (layer / "var" / ".wh..wh..opq").exists()


def test_whiteouts_hide_lower_files_in_a_container(store, busybox, tmp_path, runtime):
    from workers.engine.archive import _store_image  # the loader's own assembly step

    upper = build([entry("bin/.wh.vi"), entry("etc/.wh..wh..opq"),
                   entry("etc/only", data=b"only\n")])
    base = busybox.layers[0]
    layer = {"mediaType": oci.MEDIA_LAYER_TAR, "digest": store.put_blob(upper),
             "size": len(upper)}
    config = store.read_json_blob(busybox.image_id)
    diff_ids = [base["digest"], layer["digest"]]
    config["rootfs"]["diff_ids"] = diff_ids
    manifest = _store_image(store, oci.canonical_json(config), [base, layer], diff_ids)
    store.tag("docker.io/library/whiteout:1", manifest)
    runtime.create("w", {"image": "docker.io/library/whiteout:1",
                         "args": ["sh", "-c", "ls /etc; test -e /bin/vi || echo no-vi"]})
    runtime.start("w")
    runtime.wait("w", 20)
    listed = runtime.logs("w").split()
    # The opaque /etc hides the lower passwd; the runtime's own bind targets come back.
    assert set(listed) == {"only", "hostname", "hosts", "resolv.conf", "no-vi"}


def test_hardlinks_inside_the_layer_work(store):
    layer = unpack(store, [entry("a", data=b"same"), entry("b", tarfile.LNKTYPE, linkname="a")])
    assert (layer / "a").stat().st_ino == (layer / "b").stat().st_ino
