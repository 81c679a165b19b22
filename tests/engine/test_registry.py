"""Pull and push against Debian's docker-registry, with skopeo as the other side."""

import json

import pytest

from workers.engine import oci
from workers.engine.pull import PullError, pull, pull_tags
from workers.engine.push import PushError, push

from .layouts import Layout, layer_tar
from .registries import Registry, skopeo, skopeo_inspect, skopeo_push


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_layout(tmp_path_factory):
    layout = Layout(tmp_path_factory.mktemp("layout"))
    tars = [layer_tar({"a.txt": "first"}), layer_tar({"dir/b.txt": "second"}),
            layer_tar({"c.bin": bytes(range(256)) * 1000})]
    descriptor, _ = layout.image(tars)
    layout.tag(descriptor, "v1")
    layout.write()
    return layout


@pytest.fixture(scope="module")
def pushed(registry, app_layout):
    skopeo_push(f"oci:{app_layout.root}:v1", registry, "team/app:v1")
    return f"{registry.address}/team/app:v1"


def test_pull_matches_what_skopeo_pushed(store, registry, pushed):
    updates = []
    record = pull(store, pushed, on_progress=updates.append)
    remote = skopeo_inspect(registry, "team/app:v1")
    assert record.digest == remote["Digest"]
    assert [layer["digest"] for layer in record.layers] == remote["Layers"]
    assert record.repo_digests == [f"{registry.address}/team/app@{remote['Digest']}"]
    merged = [store.layer_path(c) for c in record.chain_ids]
    assert (merged[0] / "a.txt").read_text() == "first"
    assert (merged[1] / "dir" / "b.txt").read_text() == "second"
    assert updates[-1]["done"] == updates[-1]["total"] > 0
    assert {e["state"] for e in updates[-1]["layers"].values()} == {"done"}


def test_second_pull_skips_present_layers(store, pushed):
    pull(store, pushed)
    updates = []
    pull(store, pushed, on_progress=updates.append)
    assert {e["state"] for e in updates[-1]["layers"].values()} == {"exists"}


def test_pull_tags_takes_every_tag_but_the_skipped(store, registry, app_layout):
    for tag in ("a", "b", "c"):
        skopeo_push(f"oci:{app_layout.root}:v1", registry, f"team/tags:{tag}")
    repository = f"{registry.address}/team/tags"
    records = pull_tags(store, repository, skip=frozenset({f"{repository}:b"}))
    assert [record.reference for record in records] == [f"{repository}:a", f"{repository}:c"]
    assert {image.reference for image in store.images()} >= {f"{repository}:a",
                                                               f"{repository}:c"}
    assert f"{repository}:b" not in {image.reference for image in store.images()}
    with pytest.raises(PullError, match="no tag to pull"):
        pull_tags(store, repository, skip=frozenset(f"{repository}:{t}" for t in "abc"))
    with pytest.raises(PullError):
        pull_tags(store, f"{registry.address}/team/none-such")


def test_pull_by_digest(store, registry, pushed):
    digest = skopeo_inspect(registry, "team/app:v1")["Digest"]
    record = pull(store, f"{registry.address}/team/app@{digest}")
    assert record.digest == digest
    assert record.reference == f"{registry.address}/team/app@{digest}"


def test_index_picks_the_host_platform_and_skips_attestations(store, registry, tmp_path):
    layout = Layout(tmp_path / "multi")
    amd, _ = layout.image([layer_tar({"arch": "amd64"})])
    arm, _ = layout.image([layer_tar({"arch": "arm64"})], architecture="arm64")
    attestation, _ = layout.image([layer_tar({"in-toto": "{}"})])
    attestation = {**attestation, "platform": {"os": "unknown", "architecture": "unknown"},
                   "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    layout.index([attestation, arm, amd], "multi")
    layout.write()
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi",
           f"docker://{registry.address}/multi:1")
    record = pull(store, f"{registry.address}/multi:1")
    assert record.digest == amd["digest"]
    assert (store.layer_path(record.chain_ids[0]) / "arch").read_text() == "amd64"
    index_digest = skopeo_inspect(registry, "multi:1", raw=False)["Digest"]
    assert record.repo_digests == [f"{registry.address}/multi@{index_digest}"]


def test_zstd_layers(store, registry, tmp_path):
    layout = Layout(tmp_path / "plain")
    descriptor, _ = layout.image([layer_tar({"a.txt": "zstd-first"})], compress=False)
    layout.tag(descriptor, "v1")
    layout.write()
    skopeo("copy", "--dest-tls-verify=false", "--dest-compress-format=zstd",
           "--dest-compress", f"oci:{layout.root}:v1", f"docker://{registry.address}/z:1")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                            f"docker://{registry.address}/z:1"))
    assert raw["layers"][0]["mediaType"] == oci.MEDIA_LAYER_ZSTD
    record = pull(store, f"{registry.address}/z:1")
    assert (store.layer_path(record.chain_ids[0]) / "a.txt").read_text() == "zstd-first"


def test_missing_image_is_a_clear_error(store, registry):
    with pytest.raises(PullError, match="HTTP 404"):
        pull(store, f"{registry.address}/nothing/here:1")
    assert store.images() == []


def test_malformed_reference(store):
    with pytest.raises(PullError, match="must be lowercase"):
        pull(store, "UPPER/Case:tag")


def test_unreachable_registry(store):
    with pytest.raises(PullError, match="127.0.0.1:9"):
        pull(store, "127.0.0.1:9/app:1")


def test_mirror_is_tried_first_and_upstream_is_the_fallback(store, registry, pushed, tmp_path):
    dead_upstream = "127.0.0.1:9"
    mirror = {"mirrors": [f"http://{registry.address}"]}
    # The upstream does not answer at all: the image comes from the mirror.
    record = pull(store, f"{dead_upstream}/team/app:v1", {dead_upstream: mirror})
    assert record.reference == f"{dead_upstream}/team/app:v1"
    # A mirror that lacks the image falls back to the upstream.
    other = Registry(tmp_path / "empty-mirror").start()
    try:
        settings = {registry.address: {"mirrors": [f"http://{other.address}"]}}
        assert pull(store, pushed, settings).digest == record.digest
    finally:
        other.stop()


def test_non_loopback_registry_is_https_unless_insecure():
    from workers.engine.registry import RegistrySettings, endpoint_for

    assert endpoint_for("registry.example:5000", RegistrySettings()).startswith("https://")
    assert endpoint_for("registry.example:5000", RegistrySettings(insecure=True)) \
        .startswith("http://")
    assert endpoint_for("127.0.0.1:5000", RegistrySettings()).startswith("http://")
    assert endpoint_for("localhost:5000", RegistrySettings()).startswith("http://")
    assert endpoint_for("docker.io", RegistrySettings()) == "https://registry-1.docker.io"


def test_push_then_skopeo_reads_it(store, busybox, registry):
    target = f"{registry.address}/base/busybox:1"
    store.tag(target, busybox.digest)
    record = push(store, target)
    remote = skopeo_inspect(registry, "base/busybox:1")
    assert remote["Digest"] == busybox.digest == record.digest
    assert record.repo_digests == [f"{registry.address}/base/busybox@{busybox.digest}"]


def test_push_skips_existing_blobs_and_mounts_across_repositories(store, busybox, registry):
    first = f"{registry.address}/one/busybox:1"
    store.tag(first, busybox.digest)
    push(store, first)
    updates = []
    push(store, first, on_progress=updates.append)
    assert {e["state"] for e in updates[-1]["layers"].values()} == {"exists"}
    second = f"{registry.address}/two/busybox:1"
    store.tag(second, busybox.digest)
    updates.clear()
    push(store, second, on_progress=updates.append)
    assert {e["state"] for e in updates[-1]["layers"].values()} == {"mounted"}


def test_push_unknown_image(store, registry):
    with pytest.raises(PushError, match="no such image"):
        push(store, f"{registry.address}/nope:1")


@pytest.mark.parametrize("auth", ["basic", "token"])
def test_authenticated_registry(tmp_path, store, busybox, app_layout, auth):
    server = Registry(tmp_path / auth, auth=auth).start()
    try:
        skopeo_push(f"oci:{app_layout.root}:v1", server, "private/app:v1")
        reference = f"{server.address}/private/app:v1"
        with pytest.raises(PullError, match="HTTP 401|credentials|refused"):
            pull(store, reference)
        record = pull(store, reference, server.settings())
        assert record.digest == skopeo_inspect(server, "private/app:v1")["Digest"]
        target = f"{server.address}/private/busybox:1"
        store.tag(target, busybox.digest)
        push(store, target, server.settings())
        assert skopeo_inspect(server, "private/busybox:1")["Digest"] == busybox.digest
        if auth == "token":
            assert any("scope=repository" in path for path in server.token_server.requests)
    finally:
        server.stop()


def test_docker_schema2_manifests(store, registry, app_layout):
    skopeo("copy", "--dest-tls-verify=false", "--format=v2s2", f"oci:{app_layout.root}:v1",
           f"docker://{registry.address}/schema2:1")
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false",
                            f"docker://{registry.address}/schema2:1"))
    assert raw["mediaType"] == oci.DOCKER_MANIFEST
    record = pull(store, f"{registry.address}/schema2:1")
    assert record.digest == skopeo_inspect(registry, "schema2:1")["Digest"]
    assert (store.layer_path(record.chain_ids[0]) / "a.txt").read_text() == "first"
