"""The Docker SDK for Python (``docker`` on PyPI) against a live Berth's Docker API."""

import time

import docker
import pytest

from tests.dockerapi_helpers import GREETING, start_registry_with_image

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


@pytest.fixture(scope="module")
def client(stack):
    layout, api = stack
    # docker-py reads no HttpHeaders from config.json: the header is set on its session,
    # after the unauthenticated GET /version it uses to pick the API version.
    sdk = docker.DockerClient(base_url=f"tcp://{layout.docker_tcp}", version="auto")
    sdk.api.headers["X-Berth-Token"] = api.token
    yield sdk
    sdk.close()


@pytest.fixture(scope="module")
def local_client(stack):
    layout, _ = stack
    sdk = docker.DockerClient(base_url=f"unix://{layout.docker_socket}", version="auto")
    yield sdk
    sdk.close()


def test_version_is_negotiated(client):
    assert client.version()["ApiVersion"] == "1.51"
    assert client.api.api_version == "1.51"
    assert client.ping() is True


def test_run_returns_output_and_raises_on_failure(client):
    output = client.containers.run("busybox", ["sh", "-c", "echo hello; echo oops >&2"],
                                   remove=True)
    assert output == b"hello\n"
    with pytest.raises(docker.errors.ContainerError) as failure:
        client.containers.run("busybox", ["sh", "-c", "echo bad >&2; exit 4"], remove=True)
    assert failure.value.exit_status == 4 and b"bad" in failure.value.stderr


def test_detached_container_list_logs_stats_exec_and_archive(client):
    container = client.containers.run("busybox", ["sh", "-c", "echo ready; sleep 600"],
                                      detach=True, name="dockerapi-sdk", labels={"sdk": "yes"})
    try:
        deadline = time.monotonic() + 10
        while container.logs() != b"ready\n":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        listed = client.containers.list(filters={"label": "sdk=yes"})
        assert [item.name for item in listed] == ["dockerapi-sdk"]
        assert listed[0].status == "running"
        assert client.containers.get("dockerapi-sdk").id == container.id
        stats = container.stats(stream=False)
        assert stats["name"] == "/dockerapi-sdk" and stats["memory_stats"]["usage"] > 0
        code, output = container.exec_run(["sh", "-c", "echo from-exec; exit 3"])
        assert (code, output) == (3, b"from-exec\n")
        import io
        import tarfile

        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            info = tarfile.TarInfo("sdk.txt")
            info.size = 4
            archive.addfile(info, io.BytesIO(b"sdk\n"))
        assert container.put_archive("/tmp", buffer.getvalue()) is True
        chunks, stat = container.get_archive("/tmp/sdk.txt")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
            assert archive.extractfile("sdk.txt").read() == b"sdk\n"
        assert stat["name"] == "sdk.txt" and stat["size"] == 4
        container.stop(timeout=1)
        container.reload()
        assert container.status == "exited" and container.attrs["State"]["ExitCode"] == 137
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("dockerapi-sdk")


def test_images_pull_tag_get_remove(client, tmp_path_factory):
    registry, reference = start_registry_with_image(tmp_path_factory.mktemp("sdk-registry"))
    try:
        image = client.images.pull(reference)
        assert reference in image.tags
        assert client.containers.run(reference, remove=True) == GREETING.encode()
        assert image.tag("dockerapi-sdk-tag", "v1") is True
        assert "dockerapi-sdk-tag:v1" in client.images.get("dockerapi-sdk-tag:v1").tags
        assert any("dockerapi-sdk-tag:v1" in item.tags for item in client.images.list())
        client.images.remove("dockerapi-sdk-tag:v1")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("dockerapi-sdk-tag:v1")
        with pytest.raises(docker.errors.NotFound):
            client.images.pull(reference.rsplit(":", 1)[0] + ":missing")
    finally:
        registry.stop()


def test_volumes_and_networks(client):
    volume = client.volumes.create("dockerapi-sdk-vol", labels={"a": "b"})
    try:
        assert client.volumes.get("dockerapi-sdk-vol").attrs["Labels"] == {"a": "b"}
        assert "dockerapi-sdk-vol" in [item.name for item in client.volumes.list()]
    finally:
        volume.remove()
    network = client.networks.create("dockerapi-sdk-net")
    try:
        assert client.networks.get(network.id).name == "dockerapi-sdk-net"
        assert "dockerapi-sdk-net" in [item.name for item in client.networks.list()]
    finally:
        network.remove()


def test_unix_socket_needs_no_token(local_client):
    assert local_client.containers.run("busybox", ["echo", "local"], remove=True) == b"local\n"
