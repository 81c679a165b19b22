import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from workers.engine import oci
from workers.engine.bootstrap import BUSYBOX_REFERENCE, bootstrap_busybox
from workers.engine.store import ContentStore, DigestMismatch, StoreError


def _tar(entries) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _file(name: str, data: bytes = b"x"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_blob_is_verified_on_write(store):
    digest = store.put_blob(b"hello")
    assert digest == oci.sha256_digest(b"hello")
    assert store.read_blob(digest) == b"hello"
    with pytest.raises(DigestMismatch):
        store.put_blob(b"other", expected=digest)
    assert not store.has_blob(oci.sha256_digest(b"other"))


def test_corrupt_blob_is_detected_on_read(store):
    digest = store.put_blob(b"hello")
    store.blob_path(digest).write_bytes(b"tampered")
    with pytest.raises(DigestMismatch):
        store.read_blob(digest)


def test_store_directories_are_private(store):
    for directory in (store.root, store.blobs, store.layers):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_partial_writes_from_a_crash_are_removed_on_open(store):
    (store.blobs / "tmp-abc").write_bytes(b"half a blob")
    (store.layers / "tmp-def").mkdir()
    ContentStore(store.root)
    assert not (store.blobs / "tmp-abc").exists()
    assert not (store.layers / "tmp-def").exists()


def test_chain_ids_follow_the_image_spec():
    a, b = oci.sha256_digest(b"a"), oci.sha256_digest(b"b")
    assert oci.chain_ids([a]) == [a]
    assert oci.chain_ids([a, b]) == [a, oci.sha256_digest(f"{a} {b}".encode())]


def test_malformed_digest_is_refused(store):
    for bad in ("md5:abc", "sha256:xyz", "sha256:" + "A" * 64, "../../etc/passwd"):
        with pytest.raises(ValueError):
            store.blob_path(bad)


def test_busybox_is_a_real_single_layer_oci_image(store, busybox):
    manifest = store.read_json_blob(busybox.digest)
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    config = store.read_json_blob(manifest["config"]["digest"])
    layer = manifest["layers"][0]
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]
    assert store.blob_path(layer["digest"]).stat().st_size == layer["size"]
    assert busybox.image_id == manifest["config"]["digest"]
    assert busybox.config["Cmd"] == ["sh"]
    root = store.layer_path(busybox.chain_ids[0])
    assert os.readlink(root / "bin" / "sh") == "/bin/busybox"
    assert os.access(root / "bin" / "busybox", os.X_OK)


def test_bootstrap_is_deterministic_and_layers_are_shared(tmp_path, store, busybox):
    again = bootstrap_busybox(store, "docker.io/library/other:1")
    elsewhere = bootstrap_busybox(ContentStore(tmp_path / "second"))
    assert again.digest == busybox.digest == elsewhere.digest
    assert len(list(store.layers.iterdir())) == 1
    assert {r.reference for r in store.images()} == {BUSYBOX_REFERENCE,
                                                     "docker.io/library/other:1"}


def test_unknown_reference_is_a_clear_error(store):
    with pytest.raises(StoreError, match="no such image: nope"):
        store.resolve("nope")


def test_layer_with_wrong_diff_id_leaves_nothing(store):
    layer = store.put_blob(_tar([_file("a.txt")]))
    wrong = oci.sha256_digest(b"not this layer")
    with pytest.raises(DigestMismatch):
        store.unpack_layer(layer, wrong, wrong)
    assert list(store.layers.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.txt", "/abs/escape.txt", "a/../../escape.txt"])
def test_layer_cannot_write_outside_itself(tmp_path, store, name):
    data = _tar([_file(name)])
    layer = store.put_blob(data)
    diff_id = oci.sha256_digest(data)
    try:
        store.unpack_layer(layer, diff_id, diff_id)
    except Exception:  # noqa: BLE001 - refused is fine: tarfile raises several kinds
        assert list(store.layers.iterdir()) == []
    # Refused, or neutralised: either way nothing lands outside the layer.
    escaped = [p for p in tmp_path.rglob("escape.txt") if store.layers not in p.parents]
    assert escaped == []


def test_engine_imports_no_django():
    code = ("import sys, workers.engine.runtime, workers.engine.shim, workers.engine.store, "
            "workers.engine.bootstrap, workers.engine.logs, workers.engine.__main__; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('django'))))")
    result = subprocess.run([sys.executable, "-c", "import json; " + code], check=True,
                            capture_output=True, text=True, env={"PATH": os.environ["PATH"]},
                            cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert json.loads(result.stdout) == []
