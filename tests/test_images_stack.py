"""Images through the REST API against a live Berth, a real docker-registry and skopeo."""

import io
import json
import tarfile
import time
import urllib.request

import pytest

from tests.engine.layouts import Layout, layer_tar
from tests.engine.registries import Registry, skopeo, skopeo_inspect, skopeo_push
from workers.engine.bootstrap import build_layer, find_busybox

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    server = Registry(tmp_path_factory.mktemp("api-registry"), auth="basic").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app_image(registry, tmp_path_factory):
    """busybox plus a greeting layer, pushed to the registry by skopeo."""
    layout = Layout(tmp_path_factory.mktemp("api-layout"))
    descriptor, _ = layout.image([build_layer(find_busybox()),
                                  layer_tar({"greeting": "hello from a pulled layer\n"})],
                                 cmd=["cat", "/greeting"])
    layout.tag(descriptor, "v1")
    layout.write()
    skopeo_push(f"oci:{layout.root}:v1", registry, "apps/greeter:v1")
    return f"{registry.address}/apps/greeter:v1"


@pytest.fixture(scope="module")
def registered(stack, registry):
    _, api = stack
    status, row = api.json("POST", "/api/registries/", {
        "name": "local", "url": f"http://{registry.address}", "username": "berth",
        "password": "s3cret-pass", "insecure": True})
    assert status == 201, row
    assert "password" not in row and row["has_password"] is True
    return row


def wait_operation(api, operation_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, row = api.json("GET", f"/api/operations/{operation_id}/")
        if row["status"] in ("succeeded", "failed"):
            return row
        time.sleep(0.1)
    raise AssertionError(f"operation never finished: {row}")


def pull(api, reference: str) -> dict:
    status, operation = api.json("POST", "/api/images/pull/", {"reference": reference})
    assert status == 202, operation
    return wait_operation(api, operation["id"])


def image_id_of(api, reference: str) -> int:
    _, listing = api.json("GET", "/api/images/?limit=500")
    return next(i["id"] for i in listing["results"] if i["reference"] == reference)


def test_pull_with_credentials_then_run(stack, registry, registered, app_image):
    _, api = stack
    done = pull(api, app_image)
    assert done["status"] == "succeeded", done
    layers = done["progress"]["layers"]
    assert len(layers) == 2 and all(v["done"] == v["total"] > 0 for v in layers.values())
    remote = skopeo_inspect(registry, "apps/greeter:v1")
    [image] = done["result"]["images"]
    assert image["digest"] == remote["Digest"]
    status, created = api.json("POST", "/api/containers/", {"image": app_image})
    assert status == 201, created
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 0
    assert api.call("GET", f"/api/containers/{created['id']}/logs/")[1] == \
        b"hello from a pulled layer\n"


def test_failed_pull_says_why(stack, registered, registry):
    _, api = stack
    done = pull(api, f"{registry.address}/apps/missing:v1")
    assert done["status"] == "failed" and "404" in done["error"]


def test_tag_push_and_read_back_with_skopeo(stack, registry, registered):
    _, api = stack
    busybox = image_id_of(api, "docker.io/library/busybox:latest")
    target = f"{registry.address}/base/busybox:pushed"
    status, operation = api.json("POST", f"/api/images/{busybox}/push/", {"reference": target})
    assert status == 202, operation
    done = wait_operation(api, operation["id"])
    assert done["status"] == "succeeded", done
    _, inspected = api.json("GET", f"/api/images/{image_id_of(api, target)}/inspect/")
    assert skopeo_inspect(registry, "base/busybox:pushed")["Digest"] == \
        inspected["image"]["digest"]


def test_save_download_and_load(stack, tmp_path):
    layout, api = stack
    status, operation = api.json("POST", "/api/images/save/",
                                 {"references": ["busybox"], "format": "docker"})
    assert status == 202, operation
    done = wait_operation(api, operation["id"])
    assert done["status"] == "succeeded", done
    status, archive = api.call("GET", done["download_url"])
    assert status == 200
    path = tmp_path / "saved.tar"
    path.write_bytes(archive)
    config = json.loads(skopeo("inspect", "--config", f"docker-archive:{path}"))
    assert config["config"]["Cmd"] == ["sh"]
    # Load it back under another name: rewrite RepoTags in the archive's manifest.json.
    renamed = io.BytesIO()
    with tarfile.open(path) as source, tarfile.open(fileobj=renamed, mode="w") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else None
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest[0]["RepoTags"] = ["reloaded:1"]
                data = json.dumps(manifest).encode()
                member.size = len(data)
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    request = urllib.request.Request(f"{layout.url}/api/images/load/", method="POST",
                                     data=renamed.getvalue(),
                                     headers={"Authorization": f"Token {api.token}",
                                              "Content-Type": "application/x-tar"})
    with urllib.request.urlopen(request, timeout=30) as response:
        operation = json.loads(response.read())
    done = wait_operation(api, operation["id"])
    assert done["status"] == "succeeded", done
    assert done["result"]["images"][0]["reference"] == "docker.io/library/reloaded:1"


def test_remove_refused_while_a_container_uses_it(stack, registered, app_image):
    _, api = stack
    assert pull(api, app_image)["status"] == "succeeded"
    _, created = api.json("POST", "/api/containers/",
                          {"image": app_image, "command": ["sleep", "60"]})
    api.wait_state(created["id"], {"running"})
    image = image_id_of(api, app_image)
    status, body = api.json("DELETE", f"/api/images/{image}/")
    assert status == 409, body
    assert "used by container" in body["error"]["message"]
    status, body = api.json("DELETE", f"/api/images/{image}/?force=1")
    assert status == 200 and body["deleted"], body
    api.call("DELETE", f"/api/containers/{created['id']}/?force=1")
