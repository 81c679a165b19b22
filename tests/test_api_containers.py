"""Container REST API: creation (and the message it sends to the agent), validation,
team restriction, roles, actions and logs."""

import pytest

from apps.containers.choices import State
from apps.containers.models import Container
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from tests.fixtures import BUSYBOX, make_host, queued_messages

pytestmark = pytest.mark.django_db


def make_container(team, host, *, name="web", state=State.RUNNING) -> Container:
    image = host.images.get(reference=BUSYBOX)
    return Container.objects.create(
        name=name, team=team, host=host, image=image, image_reference=BUSYBOX, state=state
    )


def post(client, body):
    return client.post("/api/containers/", body, format="json")


def test_create_sends_container_run_to_the_host_queue(
    owner, host, broker, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(owner), {"image": "busybox", "command": ["echo", "hello"]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["state"] == "pending"
    assert body["host"] == host.name
    assert body["image"] == BUSYBOX
    assert body["command"] == ["echo", "hello"]
    assert body["team"] == "alpha"
    assert len(body["id"]) == 64 and body["id"] == body["id"].lower()
    assert {"exit_code", "created_at", "started_at", "finished_at", "error"} <= body.keys()

    messages = queued_messages(broker, host.name)
    assert len(messages) == 1
    message = messages[0]
    assert message["task"] == "agent.container_run"
    container_id, spec = message["args"]
    assert container_id == body["id"]
    # An empty cwd means the image's WorkingDir, else "/".
    assert spec == {
        "image": BUSYBOX,
        "args": ["echo", "hello"],
        "env": [],
        "cwd": "",
        "hostname": body["id"][:12],
        "name": body["name"],
        "network_mode": "bridge",
    }


def test_nothing_is_sent_when_creation_fails(
    owner, host, broker, client_for, django_capture_on_commit_callbacks
):
    make_container(owner.teams.get(), host, name="taken")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(client_for(owner), {"image": "busybox", "name": "taken"})
    assert response.status_code == 400
    assert callbacks == []
    assert queued_messages(broker, host.name) == []


def test_create_accepts_a_command_string_env_name_and_host(owner, host, client_for):
    make_host(images=(BUSYBOX,))  # a second host: the named one must be used
    response = post(
        client_for(owner),
        {
            "image": "busybox:latest",
            "command": "sh -c 'echo hi there'",
            "name": "my.app-1",
            "env": ["A=1", "EMPTY="],
            "host": host.name,
            "team": "alpha",
        },
    )
    assert response.status_code == 201, response.content
    row = Container.objects.get(pk=response.json()["id"])
    assert row.command == ["sh", "-c", "echo hi there"]
    assert row.env == ["A=1", "EMPTY="]
    assert row.name == "my.app-1"
    assert row.host == host


def test_generated_names_look_like_docker_ones(owner, host, client_for):
    name = post(client_for(owner), {"image": "busybox"}).json()["name"]
    adjective, noun = name.split("_")
    assert adjective.isalpha() and noun.isalpha()


def test_placement_prefers_an_online_host_with_the_image(owner, client_for):
    make_host(online=False)
    online = make_host()
    make_host(images=("docker.io/library/alpine:latest",))
    response = post(client_for(owner), {"image": "busybox"})
    assert response.status_code == 201, response.content
    assert response.json()["host"] == online.name


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "image", "This field is required."),
        ({"image": "Busy Box"}, "image", "invalid image name"),
        ({"image": "BusyBox"}, "image", "must be lowercase"),
        ({"image": "nginx"}, "image", "unknown image docker.io/library/nginx:latest"),
        ({"image": "busybox", "command": [1, 2]}, "command", "list of strings"),
        ({"image": "busybox", "command": {"a": 1}}, "command", "list of strings"),
        ({"image": "busybox", "command": "echo 'unclosed"}, "command", "cannot split"),
        ({"image": "busybox", "env": ["NOEQUALS"]}, "env", 'is not "KEY=value"'),
        ({"image": "busybox", "env": "A=1"}, "env", ""),
        ({"image": "busybox", "name": "-bad"}, "name", "invalid name"),
        ({"image": "busybox", "name": "a b"}, "name", "invalid name"),
        ({"image": "busybox", "host": "nowhere"}, "host", "unknown host 'nowhere'"),
        ({"image": "busybox", "team": "nope"}, "team", "unknown team 'nope'"),
    ],
)
def test_invalid_create_is_400_with_a_reason(owner, host, client_for, body, field, message):
    response = post(client_for(owner), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"]
    assert message in " ".join(error["fields"][field])
    assert error["message"]
    assert not Container.objects.exists()


def test_taken_name_is_400(owner, host, client_for):
    make_container(owner.teams.get(), host, name="web")
    response = post(client_for(owner), {"image": "busybox", "name": "web"})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["name"] == [
        "name 'web' is already taken in team alpha"
    ]


def test_same_name_in_another_team_is_fine(owner, outsider, host, client_for):
    make_container(outsider.teams.get(), host, name="web")
    assert post(client_for(owner), {"image": "busybox", "name": "web"}).status_code == 201


def test_offline_host_is_400(owner, client_for):
    offline = make_host(online=False)
    response = post(client_for(owner), {"image": "busybox", "host": offline.name})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["host"] == [f"host {offline.name} is offline"]
    response = post(client_for(owner), {"image": "busybox"})
    assert response.status_code == 400
    assert "only on offline hosts" in response.json()["error"]["message"]


def test_non_json_body_is_400_not_500(owner, host, client_for):
    response = client_for(owner).post(
        "/api/containers/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_viewer_cannot_create(viewer, host, client_for):
    response = post(client_for(viewer), {"image": "busybox"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_viewer_may_not_pick_a_team_they_only_view(viewer, outsider, other_team, client_for, host):
    from apps.teams.services import add_member

    add_member(other_team, viewer, "operator")
    response = post(client_for(viewer), {"image": "busybox", "team": "alpha"})
    assert response.status_code == 400
    assert "not an operator or owner of team 'alpha'" in response.json()["error"]["message"]
    assert post(client_for(viewer), {"image": "busybox"}).json()["team"] == "beta"


def test_viewer_reads_but_cannot_act(viewer, team, host, client_for):
    container = make_container(team, host)
    client = client_for(viewer)
    assert client.get("/api/containers/").json()["count"] == 1
    assert client.get(f"/api/containers/{container.id}/").status_code == 200
    assert client.post(f"/api/containers/{container.id}/stop/").status_code == 403
    assert client.delete(f"/api/containers/{container.id}/?force=1").status_code == 403


def test_operator_of_another_team_cannot_act_on_ours(outsider, team, host, client_for):
    from apps.teams.services import add_member

    add_member(team, outsider, "viewer")
    container = make_container(team, host)
    response = client_for(outsider).post(f"/api/containers/{container.id}/kill/")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("delete", "?force=1"), ("post", "stop/"), ("post", "kill/"), ("get", "logs/")],
)
def test_outsider_gets_404_for_another_teams_container(
    outsider, team, host, client_for, method, suffix
):
    container = make_container(team, host)
    path = f"/api/containers/{container.id}/" + suffix
    response = getattr(client_for(outsider), method)(path)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Container.objects.get(pk=container.pk).state == State.RUNNING


def test_lists_are_restricted_and_paginated(owner, outsider, other_team, team, host, client_for):
    for index in range(3):
        make_container(team, host, name=f"a{index}")
    make_container(other_team, host, name="theirs")
    body = client_for(owner).get("/api/containers/?limit=2").json()
    assert body["count"] == 3
    assert len(body["results"]) == 2 and body["next"]
    names = {row["name"] for row in client_for(outsider).get("/api/containers/").json()["results"]}
    assert names == {"theirs"}


def test_site_admin_sees_every_team(admin, owner, outsider, team, other_team, host, client_for):
    make_container(team, host, name="ours")
    make_container(other_team, host, name="theirs")
    assert client_for(admin).get("/api/containers/").json()["count"] == 2


def test_stop_and_kill_send_messages(
    operator, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    container = make_container(team, host)
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        stop = client.post(f"/api/containers/{container.id}/stop/", {"timeout": 3}, format="json")
        kill = client.post(
            f"/api/containers/{container.id}/kill/", {"signal": "TERM"}, format="json"
        )
        default_kill = client.post(f"/api/containers/{container.id}/kill/")
    assert (stop.status_code, kill.status_code, default_kill.status_code) == (202, 202, 202)
    sent = [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]
    assert sent == [
        ("agent.container_stop", [container.id, 3]),
        ("agent.container_kill", [container.id, 15]),
        ("agent.container_kill", [container.id, 9]),
    ]


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("kill", {"signal": "NOPE"}, "signal"),
        ("kill", {"signal": 99}, "signal"),
        ("stop", {"timeout": -1}, "timeout"),
        ("stop", {"timeout": "soon"}, "timeout"),
    ],
)
def test_bad_action_arguments_are_400(owner, team, host, client_for, action, body, field):
    container = make_container(team, host)
    response = client_for(owner).post(
        f"/api/containers/{container.id}/{action}/", body, format="json"
    )
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_stopping_an_exited_container_is_409(owner, team, host, client_for):
    container = make_container(team, host, state=State.EXITED)
    response = client_for(owner).post(f"/api/containers/{container.id}/stop/")
    assert response.status_code == 409
    assert "it is exited" in response.json()["error"]["message"]


def test_remove_running_needs_force(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    container = make_container(team, host)
    client = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.delete(f"/api/containers/{container.id}/")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert queued_messages(broker, host.name) == []
    with django_capture_on_commit_callbacks(execute=True):
        forced = client.delete(f"/api/containers/{container.id}/?force=1")
    assert forced.status_code == 202
    assert forced.json()["state"] == "removing"
    assert Container.objects.get(pk=container.pk).state == State.REMOVING
    [message] = queued_messages(broker, host.name)
    assert (message["task"], message["args"]) == ("agent.container_remove", [container.id, True])


def test_remove_exited_without_force(owner, team, host, client_for):
    container = make_container(team, host, state=State.EXITED)
    response = client_for(owner).delete(f"/api/containers/{container.id}/")
    assert response.status_code == 202


def test_bad_force_value_is_400(owner, team, host, client_for):
    container = make_container(team, host, state=State.EXITED)
    response = client_for(owner).delete(f"/api/containers/{container.id}/?force=maybe")
    assert response.status_code == 400
    assert "force" in response.json()["error"]["fields"]


def test_logs_are_plain_text(owner, team, host, client_for, monkeypatch):
    from apps.containers import services

    calls = []

    def fake_call_host(target, task_name, args, timeout):
        calls.append((target.name, task_name, args))
        return "hello\n"

    monkeypatch.setattr(services, "call_host", fake_call_host)
    container = make_container(team, host)
    response = client_for(owner).get(f"/api/containers/{container.id}/logs/?tail=5&timestamps=1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"hello\n"
    assert calls == [(host.name, "agent.container_logs", [container.id, 5, True])]


def test_logs_bad_tail_is_400_json(owner, team, host, client_for):
    container = make_container(team, host)
    response = client_for(owner).get(f"/api/containers/{container.id}/logs/?tail=-3")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "tail" in response.json()["error"]["fields"]


def test_logs_from_an_offline_host_are_503(owner, team, host, client_for):
    container = make_container(team, host)
    Host.objects.filter(pk=host.pk).update(status=HostStatus.OFFLINE)
    response = client_for(owner).get(f"/api/containers/{container.id}/logs/")
    assert response.status_code == 503
    assert response.json()["error"] == {
        "code": "host_unavailable",
        "message": f"host {host.name} is offline",
        "fields": {},
    }


def test_logs_from_a_silent_host_time_out_with_503(owner, team, host, broker, client_for, settings):
    settings.BERTH_LOGS_TIMEOUT = 1
    container = make_container(team, host)
    response = client_for(owner).get(f"/api/containers/{container.id}/logs/")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == f"host {host.name} did not answer within 1s"
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.container_logs"
