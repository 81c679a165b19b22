"""Container files through the REST API: archives in and out (docker cp), export, diff,
top and commit; who may use them, how agent refusals map, and the whole path on a live
stack (copy, stopped copy, diff with a deletion, top, export, commit then run)."""

import base64
import io
import json
import tarfile
import time
import urllib.error
import urllib.request

import pytest

from apps.containers.choices import State
from apps.images.models import Image
from apps.operations.models import Operation
from tests.fixtures import image_report, make_container, queued_messages

# ---- the API without an agent ---------------------------------------------------------------


def url(container, suffix):
    return f"/api/containers/{container.id}/{suffix}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "method, suffix",
    [("get", "archive/?path=/etc"), ("head", "archive/?path=/etc"), ("get", "export/"),
     ("put", "archive/?path=/tmp"), ("post", "commit/")],
)
def test_viewers_may_not_touch_files(viewer, team, host, client_for, broker, method, suffix):
    container = make_container(team, host)
    client = client_for(viewer)
    response = getattr(client, method)(url(container, suffix))
    assert response.status_code == 403
    assert queued_messages(broker, host.name) == []


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["archive/?path=/etc", "export/", "changes/", "top/"])
def test_other_teams_get_404(outsider, team, host, client_for, suffix):
    container = make_container(team, host)
    assert client_for(outsider).get(url(container, suffix)).status_code == 404


@pytest.mark.django_db
def test_viewers_read_diff_and_top(viewer, team, host, client_for, broker, fake_agent):
    container = make_container(team, host)
    fake_agent["agent.container_changes"] = {
        "ok": True, "changes": [{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]}
    response = client_for(viewer).get(url(container, "changes/"))
    assert response.status_code == 200, response.content
    assert response.json() == [{"Path": "/tmp", "Kind": 0}, {"Path": "/tmp/x", "Kind": 1}]
    top = {"Titles": ["PID", "COMMAND"], "Processes": [["42", "sleep"]]}
    fake_agent["agent.container_top"] = {"ok": True, "top": top}
    response = client_for(viewer).get(url(container, "top/?ps_args=-o%20pid,comm"))
    assert response.status_code == 200 and response.json() == top
    sent = [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]
    assert sent == [("agent.container_changes", [container.id]),
                    ("agent.container_top", [container.id, "-o pid,comm"])]


@pytest.mark.django_db
def test_head_gives_the_stat_header(operator, team, host, client_for, fake_agent):
    container = make_container(team, host, state=State.EXITED)
    stat = {"name": "etc", "size": 4096, "mode": 2147484141, "mtime": "2026-01-01T00:00:00Z",
            "linkTarget": ""}
    fake_agent["agent.container_path_stat"] = {"ok": True, "stat": stat}
    response = client_for(operator).head(url(container, "archive/?path=/etc"))
    assert response.status_code == 200
    header = response["X-Docker-Container-Path-Stat"]
    assert json.loads(base64.b64decode(header)) == stat


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer, status",
    [({"ok": False, "code": "not_found", "error": "no such file"}, 404),
     ({"ok": False, "code": "invalid", "error": "extraction point is not a directory"}, 400),
     ({"ok": False, "code": "conflict", "error": "container x is not running"}, 409),
     ({"ok": False, "code": "error", "error": "disk full"}, 502),
     ({"nonsense": True}, 502)],
)
def test_agent_refusals_map_to_statuses(operator, team, host, client_for, fake_agent, answer,
                                        status):
    container = make_container(team, host)
    fake_agent["agent.container_path_stat"] = answer
    response = client_for(operator).head(url(container, "archive/?path=/x"))
    assert response.status_code == status


@pytest.mark.django_db
@pytest.mark.parametrize(
    "suffix, field",
    [("archive/", "path"), ("archive/?path=", "path"), ("top/?ps_args=" + "x" * 300, "ps_args")],
)
def test_bad_queries_are_400(operator, team, host, client_for, suffix, field):
    container = make_container(team, host)
    response = client_for(operator).get(url(container, suffix))
    assert response.status_code == 400, response.content
    assert field in json.dumps(response.json())


@pytest.mark.django_db
@pytest.mark.parametrize("suffix", ["archive/?path=/etc", "changes/", "export/"])
def test_files_of_a_pending_container_are_409(operator, team, host, client_for, suffix):
    container = make_container(team, host, state=State.PENDING)
    assert client_for(operator).get(url(container, suffix)).status_code == 409


@pytest.mark.django_db
def test_top_of_a_stopped_container_is_409(viewer, team, host, client_for):
    container = make_container(team, host, state=State.EXITED)
    assert client_for(viewer).get(url(container, "top/")).status_code == 409


@pytest.mark.django_db
def test_copy_in_that_the_agent_refuses_closes_the_operation(
        operator, team, host, client_for, fake_agent, transfer_dir,
        django_capture_on_commit_callbacks):
    container = make_container(team, host)
    fake_agent["agent.container_archive_put"] = {
        "ok": False, "code": "invalid", "error": "extraction point is not a directory"}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator).put(
            url(container, "archive/?path=/etc/passwd"), data=_tar({"f": b"x"}),
            content_type="application/x-tar")
    assert response.status_code == 400
    assert "not a directory" in response.json()["error"]["message"]
    operation = Operation.objects.get(kind="copy_in")
    assert operation.status == "failed" and "not a directory" in operation.error
    assert list(transfer_dir.iterdir()) == []  # the upload is gone with the operation


@pytest.mark.django_db
def test_commit_records_the_teams_image(operator, team, host, client_for, fake_agent, broker):
    container = make_container(team, host)
    report = image_report("registry.example:5000/app:v2", image_id="sha256:" + "c" * 64)
    fake_agent["agent.container_commit"] = {"ok": True, "images": [report],
                                            "image_id": report["image_id"]}
    body = {"reference": "registry.example:5000/app:v2", "changes": {"Cmd": ["sh"]},
            "author": "me", "comment": "why", "pause": False}
    response = client_for(operator).post(url(container, "commit/"), body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["reference"] == "registry.example:5000/app:v2"
    row = Image.objects.get(reference="registry.example:5000/app:v2")
    assert row.team == team and row.host == host
    assert Operation.objects.get(kind="commit").status == "succeeded"
    sent = [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]
    assert sent == [("agent.container_commit", [container.id, "registry.example:5000/app:v2",
                                                {"Cmd": ["sh"]}, "me", "why", False])]


@pytest.mark.django_db
def test_commit_may_not_take_another_teams_reference(
        operator, outsider, other_team, team, host, client_for):
    make_container(other_team, host, name="theirs")
    Image.objects.create(host=host, team=other_team, reference="docker.io/library/theirs:1")
    container = make_container(team, host)
    body = {"reference": "theirs:1"}
    response = client_for(operator).post(url(container, "commit/"), body, format="json")
    assert response.status_code == 409


@pytest.mark.django_db
@pytest.mark.parametrize("body, field", [({"changes": {"Healthcheck": {}}}, "changes"),
                                         ({"reference": "UPPER/case"}, "reference"),
                                         ({"reference": "a@sha256:" + "0" * 64}, "reference")])
def test_bad_commits_are_400(operator, team, host, client_for, body, field):
    container = make_container(team, host)
    response = client_for(operator).post(url(container, "commit/"), body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] or field in response.json()["error"]["message"]


@pytest.mark.django_db
@pytest.mark.parametrize("key, value", [
    ("Cmd", [1]), ("Cmd", {"a": "b"}), ("Entrypoint", ["sh", None]), ("Env", [1]),
    ("Env", "A=1"), ("Env", ["NOEQUALS"]), ("Env", ["=1"]), ("Labels", {"a": 1}),
    ("Labels", ["a"]), ("ExposedPorts", [80]), ("ExposedPorts", {"80/tcp": "x"}),
    ("Volumes", "/data"), ("WorkingDir", 5), ("User", ["root"]), ("StopSignal", 15)])
def test_commit_changes_of_the_wrong_type_are_400(
        operator, team, host, client_for, broker, key, value):
    container = make_container(team, host)
    body = {"changes": {key: value}}
    response = client_for(operator).post(url(container, "commit/"), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert key in error["message"] and f"changes.{key}" in error["fields"]
    assert queued_messages(broker, host.name) == []  # refused before any blob is stored


@pytest.mark.django_db
def test_commit_changes_reach_the_agent_in_the_engines_shape(
        operator, team, host, client_for, fake_agent, broker):
    container = make_container(team, host)
    report = image_report("docker.io/library/app:v3", image_id="sha256:" + "d" * 64)
    fake_agent["agent.container_commit"] = {"ok": True, "images": [report],
                                            "image_id": report["image_id"]}
    changes = {"Cmd": "serve", "Entrypoint": None, "Env": ["A=1", "B="],
               "Labels": {"x": "y"}, "ExposedPorts": ["80/tcp"], "Volumes": {"/data": {}},
               "WorkingDir": "/app", "User": "1000:1000", "StopSignal": "SIGINT"}
    body = {"reference": "app:v3", "changes": changes, "pause": False}
    response = client_for(operator).post(url(container, "commit/"), body, format="json")
    assert response.status_code == 201, response.content
    sent = queued_messages(broker, host.name)[0]["args"][2]
    assert sent == {**changes, "Cmd": ["serve"], "ExposedPorts": {"80/tcp": {}}}


def _tar(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o640, 1234, 99
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


# ---- the whole path on a live stack ---------------------------------------------------------


def raw(api, method: str, path: str, body: bytes | None = None,
        content_type: str = "application/x-tar"):
    request = urllib.request.Request(f"{api.base}{path}", data=body, method=method)
    request.add_header("Authorization", f"Token {api.token}")
    if body is not None:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def members(body: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        return {m.name: (m, archive.extractfile(m).read() if m.isreg() else None)
                for m in archive}


def wait_for_path(api, container_id: str, path: str) -> dict:
    deadline = time.monotonic() + 20
    while True:
        address = f"/api/containers/{container_id}/archive/?path={path}"
        status, headers, _ = raw(api, "HEAD", address)
        if status == 200:
            return json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))
        assert status == 404 and time.monotonic() < deadline, status
        time.sleep(0.1)


@pytest.mark.stack
@pytest.mark.usefixtures("needs_root")
def test_files_end_to_end(stack):
    _, api = stack
    script = ("mkdir /data; echo hi > /data/f; chown 7:8 /data/f; ln -s f /data/link;"
              " rm /bin/vi; touch /ready; exec sleep 600")
    status, created = api.json("POST", "/api/containers/",
                               {"image": "busybox", "command": ["sh", "-c", script]})
    assert status == 201, created
    cid = created["id"]
    api.wait_state(cid, {"running"})
    wait_for_path(api, cid, "/ready")

    status, headers, body = raw(api, "GET", f"/api/containers/{cid}/archive/?path=/data")
    assert status == 200, body
    assert json.loads(base64.b64decode(headers["X-Docker-Container-Path-Stat"]))["name"] == "data"
    found = members(body)
    assert found["data/f"][1] == b"hi\n"
    assert (found["data/f"][0].uid, found["data/f"][0].gid) == (7, 8)
    assert found["data/link"][0].issym() and found["data/link"][0].linkname == "f"

    payload = _tar({"in/new.txt": b"new\n"}, {"in/to-root": "/"})
    status, _, body = raw(api, "PUT", f"/api/containers/{cid}/archive/?path=/tmp", payload)
    assert status == 200, body
    status, _, body = raw(api, "GET", f"/api/containers/{cid}/archive/?path=/tmp/in")
    found = members(body)
    assert found["in/new.txt"][1] == b"new\n" and found["in/new.txt"][0].uid == 1234
    assert found["in/to-root"][0].linkname == "/"
    status, _, body = raw(api, "GET", f"/api/containers/{cid}/archive/?path=/nowhere")
    assert status == 404, body

    status, changes = api.json("GET", f"/api/containers/{cid}/changes/")
    assert status == 200, changes
    assert {"Path": "/bin/vi", "Kind": 2} in changes
    assert {"Path": "/data/f", "Kind": 1} in changes and {"Path": "/tmp/in", "Kind": 1} in changes

    status, top = api.json("GET", f"/api/containers/{cid}/top/")
    assert status == 200, top
    assert top["Titles"][-1] == "CMD" and [row[-1] for row in top["Processes"]] == ["sleep 600"]

    status, headers, body = raw(api, "GET", f"/api/containers/{cid}/export/")
    assert status == 200, body
    exported = members(body)
    assert exported["data/f"][1] == b"hi\n" and "bin/sh" in exported
    assert "bin/vi" not in exported and "tmp/in/new.txt" in exported

    status, image = api.json("POST", f"/api/containers/{cid}/commit/",
                             {"reference": "files-test:1", "changes": {"Env": ["FROM=commit"]}})
    assert status == 201, image
    assert image["reference"] == "docker.io/library/files-test:1"
    command = ["sh", "-c", "cat /data/f /tmp/in/new.txt; echo $FROM"]
    status, run = api.json("POST", "/api/containers/", {"image": "files-test:1",
                                                        "command": command})
    assert status == 201, run
    row = api.wait_state(run["id"], {"exited"})
    assert row["exit_code"] == 0, row
    assert api.call("GET", f"/api/containers/{run['id']}/logs/")[1] == b"hi\nnew\ncommit\n"

    # stopped: both directions still work
    api.call("POST", f"/api/containers/{cid}/stop/", {"timeout": 1})
    api.wait_state(cid, {"exited"})
    status, _, body = raw(api, "PUT", f"/api/containers/{cid}/archive/?path=/data",
                          _tar({"later": b"later\n"}))
    assert status == 200, body
    status, _, body = raw(api, "GET", f"/api/containers/{cid}/archive/?path=/data/later")
    assert status == 200 and members(body)["later"][1] == b"later\n"
    status, top = api.json("GET", f"/api/containers/{cid}/top/")
    assert status == 409, top
