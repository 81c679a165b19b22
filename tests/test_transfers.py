"""Archive transfers: load/import uploads streamed to disk with a size cap, save archives the
agent PUTs and users download, the ``Authorization: Transfer`` check, cleanup, and the same
endpoints under ASGI (Django's async handler and berth.asgi.application)."""

import json
import os
import warnings
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone

from apps.images.models import Image
from apps.operations import services
from apps.operations.choices import OperationStatus, TransferDirection
from apps.operations.models import Operation, Transfer
from berth.errors import TooLarge
from tests.fixtures import BUSYBOX, image_report, make_host, queued_messages

pytestmark = pytest.mark.django_db

ARCHIVE = os.urandom(3 * 1024 * 1024 + 17)  # several chunks and an odd tail


def load(client, body=ARCHIVE, query="", content_type="application/x-tar"):
    return client.post(f"/api/images/load/{query}", body, content_type=content_type)


def start_load(owner, host, client_for, capture, broker) -> tuple[dict, dict]:
    """POST a load; returns (operation JSON, the agent message's source)."""
    with capture(execute=True):
        response = load(client_for(owner), query=f"?host={host.name}")
    assert response.status_code == 202, response.content
    return response.json(), queued_messages(broker, host.name)[-1]


def agent_get(url_or_token, token=None, client=None):
    """What the agent does: GET the transfer URL with the Transfer header."""
    token = token if token is not None else url_or_token
    path = url_or_token if url_or_token.startswith("/") else f"/api/transfers/{url_or_token}/"
    return (client or Client()).get(path, HTTP_AUTHORIZATION=f"Transfer {token}")


def path_of(url: str) -> str:
    return url.split("testserver", 1)[1] if "testserver" in url else url


# ---- load / import ------------------------------------------------------------------------


def test_load_streams_the_body_to_disk_and_queues_the_task(
    owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks
):
    operation, message = start_load(
        owner, host, client_for, django_capture_on_commit_callbacks, broker
    )
    assert (operation["kind"], operation["status"], operation["team"]) == (
        "load",
        "queued",
        "alpha",
    )
    assert message["task"] == "agent.image_load"
    operation_id, source, protected = message["args"]
    assert operation_id == operation["id"]
    # References on the host that belong to others (here the system's busybox).
    assert protected == ["docker.io/library/busybox:latest"]
    assert set(source) == {"url", "token"}
    assert source["url"] == f"http://testserver/api/transfers/{source['token']}/"
    [transfer] = Transfer.objects.all()
    assert transfer.direction == TransferDirection.TO_AGENT and transfer.size == len(ARCHIVE)
    [stored] = list(transfer_dir.iterdir())
    assert stored.read_bytes() == ARCHIVE
    assert source["token"] not in stored.name  # only the token's hash names the file
    assert source["token"] not in transfer.token_hash


def test_agent_reads_the_upload_with_its_token(
    owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks
):
    _, message = start_load(owner, host, client_for, django_capture_on_commit_callbacks, broker)
    source = message["args"][1]
    response = agent_get(path_of(source["url"]), source["token"])
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(ARCHIVE))
    assert b"".join(response.streaming_content) == ARCHIVE


def test_public_url_setting_is_used_for_transfers(
    owner, host, broker, transfer_dir, client_for, settings, django_capture_on_commit_callbacks
):
    settings.BERTH_PUBLIC_URL = "http://10.0.0.5:8000"
    _, message = start_load(owner, host, client_for, django_capture_on_commit_callbacks, broker)
    source = message["args"][1]
    assert source["url"] == f"http://10.0.0.5:8000/api/transfers/{source['token']}/"


def test_load_accepts_a_multipart_file(owner, host, transfer_dir, client_for):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("app.tar", ARCHIVE, content_type="application/x-tar")
    response = client_for(owner).post(
        f"/api/images/load/?host={host.name}", {"file": upload}, format="multipart"
    )
    assert response.status_code == 202, response.content
    assert response.json()["target"] == "app.tar"
    [stored] = list(transfer_dir.iterdir())
    assert stored.read_bytes() == ARCHIVE


def test_multipart_without_the_file_field_is_400(owner, host, transfer_dir, client_for):
    response = client_for(owner).post("/api/images/load/", {"other": "x"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_import_sends_the_reference_and_changes(
    owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(
            f"/api/images/import/?host={host.name}&reference=my/rootfs:1",
            ARCHIVE,
            content_type="application/octet-stream",
        )
    assert response.status_code == 202, response.content
    assert response.json()["target"] == "docker.io/my/rootfs:1"
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.image_import"
    operation_id, source, reference, changes = message["args"]
    assert (reference, changes) == ("docker.io/my/rootfs:1", {})
    assert source["url"].endswith(f"/api/transfers/{source['token']}/")


def test_import_needs_a_valid_reference(owner, host, transfer_dir, client_for):
    client = client_for(owner)
    missing = client.post("/api/images/import/", ARCHIVE, content_type="application/x-tar")
    assert missing.status_code == 400 and "reference" in missing.json()["error"]["fields"]
    bad = client.post(
        "/api/images/import/?reference=Bad Name", ARCHIVE, content_type="application/x-tar"
    )
    assert bad.status_code == 400
    assert list(transfer_dir.iterdir()) == []


def test_upload_over_the_cap_is_413_and_leaves_nothing(
    owner, host, transfer_dir, client_for, settings
):
    settings.BERTH_MAX_UPLOAD_BYTES = len(ARCHIVE) - 1
    response = load(client_for(owner), query=f"?host={host.name}")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    assert not Operation.objects.exists()
    assert [p for p in transfer_dir.iterdir()] == []


def test_the_cap_holds_without_a_declared_length(transfer_dir, settings):
    settings.BERTH_MAX_UPLOAD_BYTES = 1000
    chunks = iter([b"x" * 600, b"y" * 600, b"never read"])
    reads = []

    def read(size):
        reads.append(size)
        return next(chunks)

    with pytest.raises(TooLarge):
        services.stage_upload(services.Upload(read=read, length=None))
    assert len(reads) == 2  # stopped as soon as the limit was passed
    assert list(transfer_dir.iterdir()) == []


def test_staging_writes_in_chunks_not_in_one_read(transfer_dir):
    sizes = []
    data = memoryview(ARCHIVE)
    position = 0

    def read(size):
        nonlocal position
        sizes.append(size)
        chunk = bytes(data[position : position + size])
        position += len(chunk)
        return chunk

    staged = services.stage_upload(services.Upload(read=read))
    assert staged.path.read_bytes() == ARCHIVE
    assert max(sizes) <= services.CHUNK_SIZE and len(sizes) > 3


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"", "application/x-tar", 400, "invalid"),
        (b'{"a": 1}', "application/json", 415, "unsupported_media_type"),
        (b"text", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_bad_load_bodies(owner, host, transfer_dir, client_for, body, content_type, status, code):
    response = load(client_for(owner), body=body, content_type=content_type)
    assert response.status_code == status, response.content
    assert response.json()["error"]["code"] == code
    assert not Operation.objects.exists()


def test_load_roles_and_host_checks(viewer, owner, transfer_dir, client_for):
    offline = make_host(online=False)
    assert load(client_for(viewer)).status_code == 403
    assert load(client_for(None)).status_code == 401
    response = load(client_for(owner), query=f"?host={offline.name}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["host"] == [f"host {offline.name} is offline"]
    assert list(transfer_dir.iterdir()) == []


# ---- the Transfer authorization -----------------------------------------------------------


@pytest.fixture
def upload(owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks):
    operation, message = start_load(
        owner, host, client_for, django_capture_on_commit_callbacks, broker
    )
    return operation["id"], message["args"][1]["token"]


def test_wrong_or_missing_transfer_headers_are_refused(upload, owner, client_for):
    _, token = upload
    path = f"/api/transfers/{token}/"
    assert Client().get(path).status_code == 403
    assert Client().get(path, HTTP_AUTHORIZATION=f"Token {token}").status_code == 403
    assert Client().get(path, HTTP_AUTHORIZATION="Transfer wrong").status_code == 403
    other = "x" * len(token)
    assert agent_get(f"/api/transfers/{other}/", token).status_code == 403  # URL ≠ header
    unknown = agent_get(other)  # a well-formed request for a transfer that does not exist
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "not_found"
    # A signed-in user (even the owner) gets nothing without the transfer token.
    assert client_for(owner).get(path).status_code == 403
    denied = Client().get(path)
    assert denied["Content-Type"] == "application/json"
    assert denied.json()["error"]["code"] == "transfer_denied"


def test_an_upload_cannot_be_overwritten(upload):
    _, token = upload
    response = Client().put(
        f"/api/transfers/{token}/",
        b"evil",
        content_type="application/x-tar",
        HTTP_AUTHORIZATION=f"Transfer {token}",
    )
    assert response.status_code == 403
    assert "can only be read" in response.json()["error"]["message"]


def test_transfer_is_closed_once_the_operation_finished(
    upload, transfer_dir, django_capture_on_commit_callbacks
):
    operation_id, token = upload
    with django_capture_on_commit_callbacks(execute=True):
        services.finish_operation(operation_id, {"ok": True, "images": [image_report("app:1")]})
    response = agent_get(token)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "transfer_closed"
    assert list(transfer_dir.iterdir()) == []  # the upload is deleted with the operation done
    assert Transfer.objects.get().removed_at is not None


def test_finished_load_gives_the_team_the_loaded_images(upload, team):
    operation_id, _ = upload
    services.finish_operation(
        operation_id, {"ok": True, "error": "", "images": [image_report("docker.io/me/app:1")]}
    )
    assert Image.objects.get(reference="docker.io/me/app:1").team == team


# ---- save and download --------------------------------------------------------------------


def start_save(owner, host, client_for, capture, broker, **extra):
    body = {"references": ["busybox"], "host": host.name, **extra}
    with capture(execute=True):
        response = client_for(owner).post("/api/images/save/", body, format="json")
    assert response.status_code == 202, response.content
    return response.json(), queued_messages(broker, host.name)[-1]


def put_archive(target, data=ARCHIVE):
    return Client().put(
        path_of(target["url"]),
        data,
        content_type="application/x-tar",
        HTTP_AUTHORIZATION=f"Transfer {target['token']}",
    )


def test_save_round_trip(
    owner, viewer, outsider, host, broker, transfer_dir, client_for,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    operation, message = start_save(
        owner, host, client_for, django_capture_on_commit_callbacks, broker, format="oci"
    )
    assert (operation["kind"], operation["target"], operation["download_url"]) == (
        "save",
        BUSYBOX,
        None,
    )
    assert message["task"] == "agent.image_save"
    operation_id, references, target, fmt = message["args"]
    assert (operation_id, references, fmt) == (operation["id"], [BUSYBOX], "oci")
    download = f"/api/operations/{operation_id}/download/"
    early = client_for(owner).get(download)
    assert early.status_code == 409 and "still queued" in early.json()["error"]["message"]
    assert agent_get(path_of(target["url"]), target["token"]).status_code == 403  # PUT only

    assert put_archive(target).status_code == 204
    services.finish_operation(operation_id, {"ok": True, "error": "", "images": []})
    body = client_for(owner).get(f"/api/operations/{operation_id}/").json()
    assert body["status"] == "succeeded"
    assert body["download_url"] == download

    response = client_for(viewer).get(download, HTTP_ACCEPT="application/x-tar")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-tar"
    assert response["Content-Length"] == str(len(ARCHIVE))
    assert "attachment" in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == ARCHIVE
    assert client_for(outsider).get(download).status_code == 404
    assert put_archive(target).status_code == 403  # closed after the finish


def test_save_that_delivered_nothing_fails(
    owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks
):
    operation, _ = start_save(owner, host, client_for, django_capture_on_commit_callbacks, broker)
    services.finish_operation(operation["id"], {"ok": True, "images": []})
    row = Operation.objects.get()
    assert row.status == OperationStatus.FAILED
    assert row.error == "the agent reported success but delivered no archive"
    response = client_for(owner).get(f"/api/operations/{row.id}/download/")
    assert response.status_code == 409


def test_save_checks_references_and_format(
    owner, outsider, other_team, host, transfer_dir, client_for
):
    Image.objects.create(host=host, team=other_team, reference="docker.io/beta/app:1")
    client = client_for(owner)

    def save(**body):
        return client.post("/api/images/save/", body, format="json")

    response = save(references=["beta/app:1"], host=host.name)
    assert response.status_code == 400  # another team's image is not ours to save
    assert "unknown image docker.io/beta/app:1" in response.json()["error"]["message"]
    assert save(references=["busybox"], format="zip").status_code == 400
    assert save(references=[]).status_code == 400
    picked = save(references=["busybox"])
    assert picked.status_code == 202 and picked.json()["host"] == host.name
    assert (
        client_for(outsider)
        .post("/api/images/save/", {"references": ["beta/app:1"]}, format="json")
        .status_code
        == 202
    )


def test_download_of_a_pull_is_404(owner, team, host, client_for):
    operation = Operation.objects.create(kind="pull", team=team, host=host, status="succeeded")
    response = client_for(owner).get(f"/api/operations/{operation.id}/download/")
    assert response.status_code == 404


def test_cleanup_removes_old_archives_and_download_says_gone(
    owner, host, broker, transfer_dir, client_for, settings, django_capture_on_commit_callbacks
):
    operation, message = start_save(
        owner, host, client_for, django_capture_on_commit_callbacks, broker
    )
    put_archive(message["args"][2])
    services.finish_operation(operation["id"], {"ok": True, "images": []})
    stray = transfer_dir / "incoming-abandoned.part"
    stray.write_bytes(b"half")
    old = timezone.now() - timedelta(seconds=settings.BERTH_TRANSFER_TTL + 1)
    os.utime(stray, (old.timestamp(), old.timestamp()))

    assert services.cleanup_transfers(now=timezone.now()) == 1  # only the stray file is old
    assert len(list(transfer_dir.iterdir())) == 1
    later = timezone.now() + timedelta(seconds=settings.BERTH_TRANSFER_TTL + 1)
    assert services.cleanup_transfers(now=later) == 1
    assert list(transfer_dir.iterdir()) == []
    response = client_for(owner).get(f"/api/operations/{operation['id']}/download/")
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "gone"


def test_cleanup_task_runs(transfer_dir):
    from apps.operations import tasks

    assert tasks.cleanup_transfers() == 0


# ---- ASGI ---------------------------------------------------------------------------------


def test_transfers_stream_under_the_asgi_handler(
    owner, host, broker, transfer_dir, client_for, django_capture_on_commit_callbacks
):
    """Django's ASGI handler turns a sync file iterator into a list (the whole file in
    memory, with a warning); the transfer must come from an async iterator instead."""
    operation, message = start_save(
        owner, host, client_for, django_capture_on_commit_callbacks, broker
    )
    target = message["args"][2]
    header = {"AUTHORIZATION": f"Transfer {target['token']}"}

    async def scenario():
        client = AsyncClient()
        put = await client.put(
            path_of(target["url"]), ARCHIVE, content_type="application/x-tar", headers=header
        )
        assert put.status_code == 204, put.content
        return put

    async_to_sync(scenario)()
    assert (transfer_dir / Transfer.objects.get().token_hash).read_bytes() == ARCHIVE

    # Read it back as the agent of a load would: same endpoint, GET side.
    _, load_message = start_load(
        owner, host, client_for, django_capture_on_commit_callbacks, broker
    )
    source = load_message["args"][1]

    async def read_back():
        client = AsyncClient()
        response = await client.get(
            path_of(source["url"]), headers={"AUTHORIZATION": f"Transfer {source['token']}"}
        )
        assert response.status_code == 200
        assert response.is_async
        parts = [part async for part in response.streaming_content]
        return parts

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "must consume synchronous iterators" would fail
        parts = async_to_sync(read_back)()
    assert b"".join(parts) == ARCHIVE
    assert len(parts) > 1


def asgi_request(method: str, path: str, chunks: list[bytes], headers: list) -> tuple[int, bytes]:
    """Drive berth.asgi.application the way uvicorn does; returns (status, body)."""
    from asgiref.testing import ApplicationCommunicator

    from berth.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }

    async def run():
        comm = ApplicationCommunicator(application, scope)
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await comm.send_input({"type": "http.request", "body": chunk, "more_body": more})
        start = await comm.receive_output(5)
        assert start["type"] == "http.response.start"
        body = b""
        while True:
            message = await comm.receive_output(5)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await comm.wait(5)
        return start["status"], body

    return async_to_sync(run)()


def test_asgi_app_refuses_a_declared_oversized_body_before_django(settings):
    settings.BERTH_MAX_UPLOAD_BYTES = 10
    status, body = asgi_request(
        "POST",
        "/api/images/load/",
        [b"x" * 11],
        [(b"content-length", b"11"), (b"content-type", b"application/x-tar")],
    )
    assert status == 413
    assert json.loads(body)["error"]["code"] == "too_large"


def test_asgi_app_stops_reading_a_chunked_body_over_the_cap(settings):
    settings.BERTH_MAX_UPLOAD_BYTES = 10
    status, body = asgi_request(
        "PUT",
        "/api/transfers/abc/",
        [b"x" * 6, b"y" * 6, b"z"],
        [(b"content-type", b"application/x-tar")],
    )
    assert status == 413
    assert "larger than the limit of 10 bytes" in json.loads(body)["error"]["message"]


def test_asgi_app_passes_small_bodies_through(settings):
    settings.BERTH_MAX_UPLOAD_BYTES = 100
    status, body = asgi_request(
        "PUT",
        "/api/transfers/abc/",
        [b"x" * 6, b"y" * 6],
        [(b"content-type", b"application/x-tar"), (b"authorization", b"Transfer abc")],
    )
    assert status == 404  # reached Django: no such transfer
    assert json.loads(body)["error"]["code"] == "not_found"
