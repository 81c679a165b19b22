"""Exec sessions in the control plane: who may run them, the messages sent, reports applied
by compare-and-set, and stdio relayed through the real Redis streams the agent serves."""

import json

import pytest
import redis
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from django.conf import settings

from apps.containers import execs
from apps.containers.choices import State
from apps.containers.models import Exec
from apps.containers.routing import websocket_urlpatterns
from berth import streams
from tests.fixtures import make_container, queued_messages
from tests.test_consumers import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def streams_of():
    """Exec ids whose Redis streams a test used; deleted afterwards."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    used = []
    yield used
    for exec_id in used:
        client.delete(streams.exec_input(exec_id), streams.exec_output(exec_id))


def create(client, container, **body):
    return client.post("/api/execs/", {"container": container.id, "command": ["sh"], **body},
                       format="json")


def test_operator_runs_an_exec_and_the_agent_is_asked(operator, team, host, client_for, broker):
    container = make_container(team, host)
    response = create(client_for(operator), container, command=["ls", "-l"], env=["A=1"],
                      tty=True, working_dir="/tmp", user="nobody")
    assert response.status_code == 201, response.json()
    row = response.json()
    assert row["state"] == "starting"
    assert [(m["task"], m["args"]) for m in queued_messages(broker, host.name)] == [
        ("agent.exec_start", [row["id"], container.id, {
            "args": ["ls", "-l"], "env": ["A=1"], "user": "nobody", "cwd": "/tmp",
            "tty": True, "stdin": False}]),
    ]


def test_viewer_may_not_exec(viewer, team, host, client_for, broker):
    container = make_container(team, host)
    response = create(client_for(viewer), container)
    assert response.status_code == 403
    assert queued_messages(broker, host.name) == []


def test_outsider_sees_neither_container_nor_exec(outsider, owner, team, host, client_for,
                                                  broker):
    container = make_container(team, host)
    assert create(client_for(outsider), container).status_code == 404
    exec_id = create(client_for(owner), container).json()["id"]
    client = client_for(outsider)
    assert client.get(f"/api/execs/{exec_id}/").status_code == 404
    assert client.post(f"/api/execs/{exec_id}/kill/").status_code == 404
    assert client.get("/api/execs/").json()["results"] == []


@pytest.mark.parametrize("state, reason", [(State.EXITED, "not running"),
                                           (State.PAUSED, "paused")])
def test_refused_unless_running(owner, team, host, client_for, broker, state, reason):
    container = make_container(team, host, state=state)
    response = create(client_for(owner), container)
    assert response.status_code == 409
    assert reason in response.json()["error"]["message"]


@pytest.mark.parametrize("body, field", [
    ({"command": []}, "command"), ({"command": 5}, "command"), ({"env": ["NOEQ"]}, "env"),
    ({"working_dir": "tmp"}, "working_dir"), ({"tty": "yes"}, "tty"),
])
def test_bad_input_is_a_400_naming_the_field(owner, team, host, client_for, broker, body, field):
    container = make_container(team, host)
    response = create(client_for(owner), container, **body)
    assert response.status_code == 400
    assert response.json()["error"]["fields"].keys() == {field}


def test_start_twice_is_a_conflict(owner, team, host, client_for, broker):
    container = make_container(team, host)
    client = client_for(owner)
    exec_id = create(client, container, start=False).json()["id"]
    assert client.post(f"/api/execs/{exec_id}/start/").status_code == 202
    assert client.post(f"/api/execs/{exec_id}/start/").status_code == 409
    assert len(queued_messages(broker, host.name)) == 1


def test_reports_apply_in_order_only(owner, team, host):
    container = make_container(team, host)
    exec_ = execs.run_exec(owner, container, {"command": ["true"]})
    assert execs.apply_report(exec_.id, {"state": "exited", "exit_code": 3})
    assert not execs.apply_report(exec_.id, {"state": "running", "pid": 7})  # late
    exec_.refresh_from_db()
    assert (exec_.state, exec_.exit_code, exec_.pid) == ("exited", 3, None)


def test_input_resize_and_kill_reach_the_input_stream(owner, team, host, client_for, broker,
                                                      streams_of):
    container = make_container(team, host)
    client = client_for(owner)
    exec_id = create(client, container, tty=True).json()["id"]
    streams_of.append(exec_id)
    assert client.post(f"/api/execs/{exec_id}/input/?close=1", b"ls\n",
                       content_type="application/octet-stream").status_code == 204
    assert client.post(f"/api/execs/{exec_id}/resize/", {"rows": 40, "columns": 120},
                       format="json").status_code == 204
    assert client.post(f"/api/execs/{exec_id}/resize/", {"rows": 0, "columns": 1},
                       format="json").status_code == 400
    assert client.post(f"/api/execs/{exec_id}/kill/", {"signal": 15},
                       format="json").status_code == 204
    entries = redis.Redis.from_url(settings.REDIS_URL).xrange(streams.exec_input(exec_id))
    assert [fields for _, fields in entries] == [
        {b"d": b"ls\n"}, {b"eof": b"1"}, {b"resize": b"40 120"}, {b"kill": b"15"}]


def test_input_needs_stdin_or_a_terminal(owner, team, host, client_for, broker):
    container = make_container(team, host)
    client = client_for(owner)
    exec_id = create(client, container).json()["id"]
    response = client.post(f"/api/execs/{exec_id}/input/", b"x",
                           content_type="application/octet-stream")
    assert response.status_code == 409


def agent_writes(exec_id, *entries):
    client = redis.Redis.from_url(settings.REDIS_URL)
    for fields in entries:
        client.xadd(streams.exec_output(exec_id), fields)


def test_terminal_websocket_relays_both_ways(owner, team, host, broker, streams_of):
    container = make_container(team, host)
    exec_ = execs.run_exec(owner, container, {"command": ["sh"], "tty": True})
    streams_of.append(exec_.id)
    agent_writes(exec_.id, {"s": "stdout", "d": b"$ "})

    async def scenario():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/execs/{exec_.id}/")
        comm.scope["user"] = owner
        assert (await comm.connect())[0]
        first = await comm.receive_output(5)
        await comm.send_input({"type": "websocket.receive", "bytes": b"id\n"})
        await comm.send_input({"type": "websocket.receive",
                               "text": json.dumps({"type": "resize", "rows": 9, "columns": 80})})
        await comm.send_input({"type": "websocket.receive", "text": "nonsense"})
        error = await comm.receive_output(5)
        agent_writes(exec_.id, {"s": "stdout", "d": b"uid=0\n"}, {"exit": 0})
        second = await comm.receive_output(5)
        end = await comm.receive_output(5)
        await comm.wait(5)
        return first, error, second, end

    first, error, second, end = async_to_sync(scenario)()
    assert first["bytes"] == b"$ "
    assert json.loads(error["text"])["type"] == "error"
    assert second["bytes"] == b"uid=0\n"
    assert json.loads(end["text"])["exit_code"] == 0
    inputs = redis.Redis.from_url(settings.REDIS_URL).xrange(streams.exec_input(exec_.id))
    assert [fields for _, fields in inputs] == [{b"d": b"id\n"}, {b"resize": b"9 80"}]


@pytest.mark.parametrize("persona", ["viewer", "outsider"])
def test_terminal_websocket_refuses_who_may_not_exec(request, owner, team, host, broker,
                                                    persona):
    container = make_container(team, host)
    exec_ = execs.run_exec(owner, container, {"command": ["sh"], "tty": True})
    user = request.getfixturevalue(persona)

    async def scenario():
        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/execs/{exec_.id}/")
        comm.scope["user"] = user
        return await comm.connect()

    assert async_to_sync(scenario)() == (False, 4404)


def test_output_events_resume_after_an_id(owner, team, host, client_for, broker, streams_of):
    container = make_container(team, host)
    client = client_for(owner)
    exec_id = create(client, container).json()["id"]
    streams_of.append(exec_id)
    agent_writes(exec_id, {"s": "stdout", "d": b"one"}, {"s": "stderr", "d": b"two"},
                 {"exit": 5})
    assert Exec.objects.get(pk=exec_id).state == "starting"
    first_id = redis.Redis.from_url(settings.REDIS_URL).xrange(
        streams.exec_output(exec_id))[0][0].decode()

    async def body(after):
        from apps.containers.api.execs import _events
        return b"".join([chunk async for chunk in _events(exec_id, after)]).decode()

    text = async_to_sync(body)(first_id)
    assert "event: stderr" in text and "dHdv" in text  # base64 of "two"
    assert "event: stdout" not in text
    assert '"exit_code":5' in text


def test_only_who_may_exec_reads_the_output(owner, viewer, team, host, client_for, broker):
    container = make_container(team, host)
    exec_id = create(client_for(owner), container).json()["id"]
    response = client_for(viewer).get(f"/api/execs/{exec_id}/output/")
    assert response.status_code == 403
    assert client_for(viewer).get(f"/api/execs/{exec_id}/").status_code == 200


def test_input_limits_and_ended_execs(owner, team, host, client_for, broker, streams_of):
    container = make_container(team, host)
    client = client_for(owner)
    exec_id = create(client, container, stdin=True).json()["id"]
    streams_of.append(exec_id)
    big = client.post(f"/api/execs/{exec_id}/input/", b"x" * (execs.MAX_INPUT + 1),
                      content_type="application/octet-stream")
    assert big.status_code == 413
    execs.apply_report(exec_id, {"state": "exited", "exit_code": 0})
    late = client.post(f"/api/execs/{exec_id}/input/", b"x",
                       content_type="application/octet-stream")
    assert late.status_code == 409


def test_oversized_commands_and_bad_resume_ids_are_4xx(owner, team, host, client_for, broker):
    container = make_container(team, host)
    client = client_for(owner)
    assert create(client, container, env=[f"A={'x' * 200_000}"]).status_code == 413
    exec_id = create(client, container).json()["id"]
    response = client.get(f"/api/execs/{exec_id}/output/?after=bogus",
                          HTTP_ACCEPT="text/event-stream")
    assert response.status_code == 400
