"""save/load/import against skopeo's docker-archive and OCI readers and writers."""

import gzip
import io
import json
import tarfile

import pytest

from workers.engine.archive import ArchiveError, import_rootfs, load, save
from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.pull import pull

from .layouts import Layout, layer_tar
from .registries import skopeo
from .test_registry import app_layout, pushed, registry  # noqa: F401 - shared fixtures


def skopeo_json(*args: str) -> dict:
    return json.loads(skopeo(*args))


@pytest.mark.parametrize("form", ["docker", "oci"])
def test_saved_archive_reads_in_skopeo(store, busybox, tmp_path, form):
    path = tmp_path / "out.tar"
    with open(path, "wb") as out:
        save(store, ["busybox"], out, form)
    transport = "docker-archive" if form == "docker" else "oci-archive"
    config = skopeo_json("inspect", "--config", f"{transport}:{path}")
    assert config["rootfs"]["diff_ids"] == [busybox.layers[0]["digest"]]
    if form == "docker":
        with tarfile.open(path) as archive:
            names = archive.getnames()
            manifest = json.loads(archive.extractfile("manifest.json").read())
        assert manifest[0]["RepoTags"] == ["busybox:latest"]
        assert {"index.json", "oci-layout", "manifest.json"} <= set(names)
    else:
        assert skopeo_json("inspect", "--raw", f"oci-archive:{path}")["config"]["digest"] \
            == busybox.image_id


def test_save_then_load_round_trip(store, busybox, tmp_path):
    from workers.engine.store import ContentStore

    path = tmp_path / "out.tar"
    with open(path, "wb") as out:
        save(store, [BUSYBOX_REFERENCE], out, "docker")
    other = ContentStore(tmp_path / "other")
    with open(path, "rb") as source:
        [record] = load(other, source)
    assert record.reference == BUSYBOX_REFERENCE
    assert record.image_id == busybox.image_id


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_load_archives_skopeo_wrote(store, registry, pushed, tmp_path, transport):  # noqa: F811
    path = tmp_path / "from-skopeo.tar"
    suffix = ":app:v1" if transport == "docker-archive" else ":v1"
    skopeo("copy", "--src-tls-verify=false", f"docker://{pushed}", f"{transport}:{path}{suffix}")
    with open(path, "rb") as source:
        records = load(store, source, default_reference="docker.io/library/app:v1")
    [record] = records
    assert record.reference == "docker.io/library/app:v1"
    remote = skopeo_json("inspect", "--config", "--tls-verify=false", f"docker://{pushed}")
    assert record.config["Cmd"] == remote["config"]["Cmd"]
    assert (store.layer_path(record.chain_ids[0]) / "a.txt").read_text() == "first"


def test_pulled_image_saves_with_layers_uncompressed(store, registry, pushed, tmp_path):  # noqa: F811
    record = pull(store, pushed)
    path = tmp_path / "pulled.tar"
    with open(path, "wb") as out:
        save(store, [pushed], out, "docker")
    config = skopeo_json("inspect", "--config", f"docker-archive:{path}")
    assert config["rootfs"]["diff_ids"] == json.loads(
        store.read_blob(record.image_id))["rootfs"]["diff_ids"]


def test_not_an_archive(store):
    with pytest.raises(ArchiveError, match="neither manifest.json nor index.json"):
        load(store, io.BytesIO(layer_tar({"hello": "x"})))
    with pytest.raises(ArchiveError):
        load(store, io.BytesIO(b"this is not a tar"))
    assert store.images() == []


def test_import_rootfs_runs(store, tmp_path, runtime):
    from workers.engine.bootstrap import build_layer, find_busybox

    tar = build_layer(find_busybox())
    record = import_rootfs(store, io.BytesIO(gzip.compress(tar)), "imported:1",
                           {"Cmd": ["cat", "/etc/passwd"]})
    assert record.reference == "docker.io/library/imported:1"
    assert record.layers[0]["mediaType"].endswith("+gzip")
    runtime.create("imp", {"image": record.reference, "args": []})
    runtime.start("imp")
    runtime.wait("imp", 20)
    assert runtime.logs("imp").startswith("root:x:0:0")


def test_import_refuses_unknown_changes(store):
    with pytest.raises(ArchiveError, match="unsupported image changes"):
        import_rootfs(store, io.BytesIO(layer_tar({"a": "b"})), "x:1", {"Bogus": 1})


def test_oci_layout_with_tag_only_names_uses_the_default(store, tmp_path):
    layout = Layout(tmp_path / "layout")
    descriptor, _ = layout.image([layer_tar({"f": "1"})])
    layout.tag(descriptor, "v7")
    layout.write()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(layout.root, arcname=".")
    buffer.seek(0)
    [record] = load(store, buffer, default_reference="myapp")
    assert record.reference == "docker.io/library/myapp:v7"


def test_load_refuses_to_repoint_a_protected_reference(store, busybox, tmp_path):
    from workers.engine.store import ContentStore

    other = ContentStore(tmp_path / "other")
    imported = import_rootfs(other, io.BytesIO(layer_tar({"evil": "x"})), "busybox:latest")
    path = tmp_path / "evil.tar"
    with open(path, "wb") as out:
        save(other, [imported.reference], out, "docker")
    with open(path, "rb") as source, pytest.raises(ArchiveError, match="another team"):
        load(store, source, protected=frozenset({BUSYBOX_REFERENCE}))
    assert store.resolve(BUSYBOX_REFERENCE).digest == busybox.digest
    # The very same image may be loaded over itself.
    same = tmp_path / "same.tar"
    with open(same, "wb") as out:
        save(store, [BUSYBOX_REFERENCE], out, "oci")
    with open(same, "rb") as source:
        [record] = load(store, source, protected=frozenset({BUSYBOX_REFERENCE}))
    assert record.digest == busybox.digest
