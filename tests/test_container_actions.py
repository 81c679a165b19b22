"""Container actions (start, restart, pause, unpause, update, rename, wait, stats), who may
use them, the new report fields and states, and auto-removal."""

import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from apps.containers import services
from apps.containers.api import streams
from apps.containers.choices import State
from apps.containers.models import Container
from apps.containers.services import apply_report
from tests.fixtures import agent_exception, make_container, queued_messages, read_body

pytestmark = pytest.mark.django_db


def url(container, suffix=""):
    return f"/api/containers/{container.id}/{suffix}"


def report(seq, state="running", **extra):
    body = {
        "seq": seq,
        "state": state,
        "pid": 42 if state in ("running", "paused") else None,
        "exit_code": None,
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": None,
        "error": "",
    }
    body.update(extra)
    return body


def sent(broker, host) -> list[tuple]:
    return [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]


# ---- who may do what ----------------------------------------------------------------------

POST_ACTIONS = ["start/", "restart/", "pause/", "unpause/", "update/", "rename/"]
GET_ACTIONS = ["wait/?timeout=0", "stats/", "logs/", "logs/events/?follow=0"]


@pytest.mark.parametrize("suffix", POST_ACTIONS)
def test_viewer_may_not_act(viewer, team, host, client_for, broker, suffix):
    container = make_container(team, host, state=State.EXITED)
    response = client_for(viewer).post(url(container, suffix), {"name": "x"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert queued_messages(broker, host.name) == []


@pytest.mark.parametrize("suffix", POST_ACTIONS + GET_ACTIONS)
def test_outsider_gets_404(outsider, team, host, client_for, broker, suffix):
    container = make_container(team, host, state=State.EXITED)
    client = client_for(outsider)
    method = client.post if suffix in POST_ACTIONS else client.get
    response = method(url(container, suffix))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert queued_messages(broker, host.name) == []


def test_anonymous_gets_401(team, host, client_for):
    container = make_container(team, host)
    assert client_for().post(url(container, "start/")).status_code == 401
    assert client_for().get(url(container, "wait/")).status_code == 401


def test_viewer_may_read(viewer, team, host, client_for, log_stream, monkeypatch):
    container = make_container(team, host, state=State.EXITED, exit_code=0)
    log_stream.add(container.id, "hello")
    client = client_for(viewer)
    assert client.get(url(container, "wait/")).json()["state"] == "exited"
    assert client.get(url(container, "logs/")).content == b"hello\n"
    events = client.get(url(container, "logs/events/?follow=0"))
    assert events.status_code == 200
    running = make_container(team, host, name="busy")
    monkeypatch.setattr(services, "call_host", lambda *args: {"cpu_usage_ns": 1})
    assert client.get(url(running, "stats/")).json() == {"cpu_usage_ns": 1}


def test_site_admin_may_act_on_any_team(admin, team, host, client_for, broker):
    container = make_container(team, host, state=State.EXITED)
    assert client_for(admin).post(url(container, "start/")).status_code == 202


# ---- start, restart, pause, unpause -------------------------------------------------------


def test_start_sends_container_start(
    operator, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    created = make_container(team, host, name="a", state=State.CREATED)
    exited = make_container(team, host, name="b", state=State.EXITED)
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url(created, "start/"))
        second = client.post(url(exited, "start/"))
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["id"] == created.id
    assert sent(broker, host) == [
        ("agent.container_start", [created.id]),
        ("agent.container_start", [exited.id]),
    ]


@pytest.mark.parametrize("state", ["pending", "running", "paused", "restarting", "removing"])
def test_start_from_the_wrong_state_is_409(owner, team, host, broker, client_for, state):
    container = make_container(team, host, state=state)
    response = client_for(owner).post(url(container, "start/"))
    assert response.status_code == 409
    assert response.json()["error"]["message"] == f"cannot start container web: it is {state}"
    assert queued_messages(broker, host.name) == []


def test_restart_passes_the_timeout(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    container = make_container(team, host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(url(container, "restart/"), {"timeout": 5}, format="json")
        default = client_for(owner).post(url(container, "restart/"))
    assert (response.status_code, default.status_code) == (202, 202)
    assert sent(broker, host) == [
        ("agent.container_restart", [container.id, 5]),
        ("agent.container_restart", [container.id, 10]),
    ]


def test_restart_needs_the_container_on_its_host(owner, team, host, client_for):
    container = make_container(team, host, state=State.PENDING)
    assert client_for(owner).post(url(container, "restart/")).status_code == 409
    bad = client_for(owner).post(url(container, "restart/"), {"timeout": -1}, format="json")
    assert bad.status_code == 400 and "timeout" in bad.json()["error"]["fields"]


def test_pause_and_unpause(
    operator, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    running = make_container(team, host, name="a")
    paused = make_container(team, host, name="b", state=State.PAUSED)
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(url(running, "pause/")).status_code == 202
        assert client.post(url(paused, "unpause/")).status_code == 202
        assert client.post(url(running, "unpause/")).status_code == 409
        assert client.post(url(paused, "pause/")).status_code == 409
    assert sent(broker, host) == [
        ("agent.container_pause", [running.id]),
        ("agent.container_unpause", [paused.id]),
    ]


def test_paused_container_can_be_stopped_but_removed_only_with_force(
    owner, team, host, broker, client_for
):
    container = make_container(team, host, state=State.PAUSED)
    client = client_for(owner)
    assert client.post(url(container, "stop/")).status_code == 202
    refused = client.delete(url(container))
    assert refused.status_code == 409
    assert "is paused" in refused.json()["error"]["message"]
    assert client.delete(url(container, "?force=1")).status_code == 202


# ---- update -------------------------------------------------------------------------------


def test_update_calls_the_agent_and_stores_the_values(
    owner, team, host, broker, client_for, fake_agent
):
    container = make_container(team, host, options={"memory": 2**30, "pids_limit": 10})
    fake_agent["agent.container_update"] = {"limits": {}, "restart": "always"}
    body = {"memory": "512m", "cpus": 0.5, "restart_policy": "always", "cpuset_cpus": "1"}
    response = client_for(owner).post(url(container, "update/"), body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["options"]["memory"] == 512 * 2**20
    assert data["options"]["cpus"] == 0.5
    assert data["options"]["pids_limit"] == 10  # untouched
    assert data["restart_policy"] == "always"
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.container_update"
    assert message["args"] == [
        container.id,
        {"memory": 512 * 2**20, "cpuset_cpus": "1", "cpu_quota": 50_000, "cpu_period": 100_000},
        "always",
    ]
    row = Container.objects.get(pk=container.pk)
    assert row.options == {
        "memory": 512 * 2**20,
        "pids_limit": 10,
        "cpus": 0.5,
        "cpuset_cpus": "1",
    }
    assert row.restart_policy == "always"


def test_update_of_the_restart_policy_alone_sends_no_limits(
    owner, team, host, broker, client_for, fake_agent
):
    container = make_container(team, host, state=State.EXITED)
    fake_agent["agent.container_update"] = {"limits": {}, "restart": "no"}
    response = client_for(owner).post(
        url(container, "update/"), {"restart_policy": "on-failure:0"}, format="json"
    )
    assert response.status_code == 200, response.content
    [message] = queued_messages(broker, host.name)
    assert message["args"] == [container.id, None, "on-failure"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, None, "nothing to update"),
        ({"memory": "tiny"}, "memory", "number of bytes"),
        ({"cpus": 9}, "cpus", "has 2 CPUs"),
        ({"memory_swap": "100m"}, "memory_swap", "at least 'memory'"),
        ({"restart_policy": "maybe"}, "restart_policy", "invalid restart policy"),
        ({"user": "root"}, "user", "unknown field"),
    ],
)
def test_bad_update_is_400(owner, team, host, broker, client_for, body, field, message):
    container = make_container(team, host, options={"memory": 2**30, "memory_swap": 2**31})
    response = client_for(owner).post(url(container, "update/"), body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    if field is None:
        assert message in error["message"]
    else:
        assert message in " ".join(error["fields"][field])
    assert queued_messages(broker, host.name) == []
    assert Container.objects.get(pk=container.pk).options["memory"] == 2**30


def test_update_of_an_auto_remove_container_keeps_restart_no(owner, team, host, client_for):
    container = make_container(team, host, auto_remove=True)
    response = client_for(owner).post(
        url(container, "update/"), {"restart_policy": "always"}, format="json"
    )
    assert response.status_code == 400
    assert "auto_remove" in response.json()["error"]["fields"]


def test_update_before_the_host_has_it_is_409(owner, team, host, broker, client_for):
    container = make_container(team, host, state=State.PENDING)
    response = client_for(owner).post(url(container, "update/"), {"memory": "1g"}, format="json")
    assert response.status_code == 409
    assert queued_messages(broker, host.name) == []


def test_update_refused_by_the_agent_is_409_and_stores_nothing(
    owner, team, host, broker, client_for, fake_agent
):
    container = make_container(team, host)
    fake_agent["agent.container_update"] = agent_exception(
        "RuntimeError_", "cannot write 1 to cpuset.cpus: Invalid argument"
    )
    response = client_for(owner).post(
        url(container, "update/"), {"cpuset_cpus": "1"}, format="json"
    )
    assert response.status_code == 409
    assert "Invalid argument" in response.json()["error"]["message"]
    assert Container.objects.get(pk=container.pk).options == {}


def test_update_on_an_offline_host_is_503(owner, team, host, client_for):
    from apps.hosts.choices import HostStatus
    from apps.hosts.models import Host

    container = make_container(team, host)
    Host.objects.filter(pk=host.pk).update(status=HostStatus.OFFLINE)
    response = client_for(owner).post(url(container, "update/"), {"memory": "1g"}, format="json")
    assert response.status_code == 503


# ---- rename -------------------------------------------------------------------------------


def test_rename_is_200_and_broadcast(
    owner, team, host, broker, client_for, memory_layer, django_capture_on_commit_callbacks
):
    from apps.containers.events import team_group

    channel = async_to_sync(memory_layer.new_channel)()
    async_to_sync(memory_layer.group_add)(team_group(team.pk), channel)
    container = make_container(team, host, name="old")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(url(container, "rename/"), {"name": "new"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "new"
    assert Container.objects.get(pk=container.pk).name == "new"
    message = async_to_sync(memory_layer.receive)(channel)
    assert message["event"]["container"]["name"] == "new"
    assert queued_messages(broker, host.name) == []  # the host is not involved


def test_rename_must_stay_unique_in_the_team(owner, outsider, other_team, team, host, client_for):
    container = make_container(team, host, name="a")
    make_container(team, host, name="b")
    make_container(other_team, host, name="c")
    client = client_for(owner)
    taken = client.post(url(container, "rename/"), {"name": "b"}, format="json")
    assert taken.status_code == 400
    assert taken.json()["error"]["fields"]["name"] == ["name 'b' is already taken in team alpha"]
    assert Container.objects.get(pk=container.pk).name == "a"
    assert client.post(url(container, "rename/"), {"name": "c"}, format="json").status_code == 200
    same = client.post(url(container, "rename/"), {"name": "c"}, format="json")
    assert same.status_code == 200


@pytest.mark.parametrize("name", ["-bad", "a b", "", 5, None])
def test_invalid_rename_is_400(owner, team, host, client_for, name):
    container = make_container(team, host)
    response = client_for(owner).post(url(container, "rename/"), {"name": name}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_concurrent_rename_is_409(team, host):
    container = make_container(team, host, name="a")
    stale = Container.objects.select_related("team").get(pk=container.pk)
    services.rename_container(container, "b")
    from berth.errors import Conflict

    with pytest.raises(Conflict):
        services.rename_container(stale, "c")


# ---- reports ------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["restarting", "paused"])
def test_new_reported_states_are_applied(team, host, state):
    container = make_container(team, host, state=State.PENDING)
    assert apply_report(container.id, report(3, state, restart_count=2)) is True
    container.refresh_from_db()
    assert (container.state, container.restart_count) == (state, 2)


def test_oom_kill_is_recorded_and_broadcast(
    team, host, memory_layer, django_capture_on_commit_callbacks
):
    from apps.containers.events import team_group

    channel = async_to_sync(memory_layer.new_channel)()
    async_to_sync(memory_layer.group_add)(team_group(team.pk), channel)
    container = make_container(team, host)
    with django_capture_on_commit_callbacks(execute=True):
        apply_report(
            container.id, report(4, "exited", exit_code=137, oom_killed=True, restart_count=1)
        )
    container.refresh_from_db()
    assert (container.exit_code, container.oom_killed, container.restart_count) == (137, True, 1)
    event = async_to_sync(memory_layer.receive)(channel)["event"]["container"]
    assert (event["oom_killed"], event["restart_count"]) == (True, 1)


def test_reports_without_the_new_fields_keep_what_is_stored(team, host):
    container = make_container(team, host, oom_killed=True, restart_count=3)
    assert apply_report(container.id, report(5, "exited", exit_code=137)) is True
    container.refresh_from_db()
    assert (container.oom_killed, container.restart_count) == (True, 3)


@pytest.mark.parametrize(
    "bad", [report(1, oom_killed="yes"), report(1, restart_count=-1), report(1, restart_count="2")]
)
def test_malformed_new_fields_are_rejected(team, host, bad):
    container = make_container(team, host)
    with pytest.raises(ValueError):
        apply_report(container.id, bad)


def test_exited_auto_remove_container_is_removed(
    team, host, broker, django_capture_on_commit_callbacks
):
    container = make_container(team, host, auto_remove=True)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        apply_report(container.id, report(2, "exited", exit_code=0))
    assert queued_messages(broker, host.name) == []  # only after commit
    with django_capture_on_commit_callbacks(execute=True):  # the send is queued by a callback
        for callback in callbacks:
            callback()
    assert sent(broker, host) == [("agent.container_remove", [container.id, True, True])]
    assert Container.objects.get(pk=container.pk).state == State.EXITED  # waiters see the exit


def test_only_auto_remove_exits_are_removed(team, host, broker, django_capture_on_commit_callbacks):
    kept = make_container(team, host, name="kept")
    auto = make_container(team, host, name="auto", auto_remove=True)
    with django_capture_on_commit_callbacks(execute=True):
        apply_report(kept.id, report(2, "exited", exit_code=0))
        apply_report(auto.id, report(2, "running"))
        apply_report(auto.id, report(1, "exited"))  # stale: not applied, nothing sent
    assert queued_messages(broker, host.name) == []


def test_removal_expires_the_log_stream_after_commit(
    team, host, log_stream, django_capture_on_commit_callbacks
):
    from apps.containers.logs import REMOVED_STREAM_GRACE, stream_key
    from berth.streams import attach_input

    container = make_container(team, host, state=State.REMOVING)
    log_stream.add(container.id, "bye")
    log_stream.client.xadd(attach_input(container.id), {"d": b"unread input"})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        apply_report(container.id, report(9, "removed"))
    assert log_stream.client.ttl(stream_key(container.id)) == -1
    for callback in callbacks:
        callback()
    # Readable a little longer, for a `docker run --rm` still copying the last lines.
    assert 0 < log_stream.client.ttl(stream_key(container.id)) <= REMOVED_STREAM_GRACE
    assert not log_stream.client.exists(attach_input(container.id))  # input nobody reads


def test_log_stream_deletion_errors_are_logged_not_raised(
    team, host, settings, caplog, django_capture_on_commit_callbacks
):
    from apps.containers import logs

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    logs._clients.clear()
    container = make_container(team, host)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert apply_report(container.id, report(9, "removed")) is True
    finally:
        logs._clients.clear()
    assert not Container.objects.filter(pk=container.pk).exists()
    assert "could not delete the log stream" in caplog.text


# ---- wait ---------------------------------------------------------------------------------


def test_wait_answers_at_once_for_an_exited_container(viewer, team, host, client_for):
    container = make_container(team, host, state=State.EXITED, exit_code=3, oom_killed=True)
    response = client_for(viewer).get(url(container, "wait/"))
    assert response.status_code == 200
    assert response.json() == {
        "state": "exited",
        "exit_code": 3,
        "oom_killed": True,
        "timed_out": False,
    }


def test_wait_times_out_with_200(owner, team, host, client_for):
    container = make_container(team, host)
    now = client_for(owner).get(url(container, "wait/?timeout=0"))
    assert now.json() == {
        "state": "running",
        "exit_code": None,
        "oom_killed": False,
        "timed_out": True,
    }
    blocking = client_for(owner).get(url(container, "wait/?timeout=1"))  # WSGI: polls
    assert blocking.status_code == 200
    assert blocking.json()["timed_out"] is True


@pytest.mark.parametrize("query", ["timeout=-1", "timeout=soon", "timeout=99999"])
def test_bad_wait_timeout_is_400(owner, team, host, client_for, query):
    container = make_container(team, host)
    response = client_for(owner).get(url(container, f"wait/?{query}"))
    assert response.status_code == 400
    assert "timeout" in response.json()["error"]["fields"]


def async_client(user):
    from django.test import AsyncClient

    client = AsyncClient()
    client.force_login(user)
    return client


def test_wait_returns_when_the_exit_is_reported(
    owner, team, host, redis_url, monkeypatch, django_capture_on_commit_callbacks
):
    """Under ASGI the team's events wake the waiter (the database poll is set to an hour)."""
    monkeypatch.setattr(streams, "WAIT_EVENT_POLL", 3600)
    container = make_container(team, host)

    def exit_reported():
        with django_capture_on_commit_callbacks(execute=True):
            apply_report(container.id, report(2, "exited", exit_code=3, oom_killed=True))

    client = async_client(owner)

    async def scenario():
        import asyncio
        import time

        response = await client.get(url(container, "wait/?timeout=30"))
        assert response.status_code == 200 and response.is_async
        body = response.streaming_content.__aiter__()
        reading = asyncio.ensure_future(body.__anext__())
        await asyncio.sleep(0.3)
        assert not reading.done()  # still waiting
        started = time.monotonic()
        await sync_to_async(exit_reported)()
        chunk = await asyncio.wait_for(reading, 10)
        return chunk, time.monotonic() - started

    chunk, elapsed = async_to_sync(scenario)()
    assert json.loads(chunk) == {
        "state": "exited",
        "exit_code": 3,
        "oom_killed": True,
        "timed_out": False,
    }
    assert elapsed < 5


def test_wait_reports_a_removal_with_the_last_exit_code(
    owner, team, host, redis_url, monkeypatch, django_capture_on_commit_callbacks
):
    """An auto-removed container: exited and removed before the waiter looked again."""
    monkeypatch.setattr(streams, "WAIT_EVENT_POLL", 3600)
    container = make_container(team, host, auto_remove=True)

    def exit_and_removal():
        with django_capture_on_commit_callbacks(execute=True):
            apply_report(container.id, report(2, "exited", exit_code=1))
            apply_report(container.id, report(3, "removed"))

    client = async_client(owner)

    async def scenario():
        import asyncio

        response = await client.get(url(container, "wait/?timeout=30"))
        reading = asyncio.ensure_future(response.streaming_content.__aiter__().__anext__())
        await asyncio.sleep(0.3)
        await sync_to_async(exit_and_removal)()
        return json.loads(await asyncio.wait_for(reading, 10))

    assert async_to_sync(scenario)() == {
        "state": "removed",
        "exit_code": 1,
        "oom_killed": False,
        "timed_out": False,
    }


def test_wait_polls_the_database_without_a_channel_layer(owner, team, host, monkeypatch):
    monkeypatch.setattr(streams, "get_channel_layer", lambda: None)
    container = make_container(team, host)

    client = async_client(owner)

    async def scenario():
        import asyncio

        response = await client.get(url(container, "wait/?timeout=30"))
        reading = asyncio.ensure_future(response.streaming_content.__aiter__().__anext__())
        await asyncio.sleep(0.2)
        await sync_to_async(apply_report)(container.id, report(2, "exited", exit_code=4))
        return json.loads(await asyncio.wait_for(reading, 5))

    assert async_to_sync(scenario)()["exit_code"] == 4


def test_wait_times_out_under_asgi(owner, team, host, monkeypatch):
    monkeypatch.setattr(streams, "get_channel_layer", lambda: None)
    container = make_container(team, host)

    client = async_client(owner)

    async def scenario():
        response = await client.get(url(container, "wait/?timeout=1"))
        return await read_body(response.streaming_content)

    assert json.loads(async_to_sync(scenario)())["timed_out"] is True


# ---- stats --------------------------------------------------------------------------------

SAMPLE = {
    "cpu_usage_ns": 1_000_000_000,
    "memory_usage": 10 * 2**20,
    "memory_limit": 2**30,
    "memory_cache": 2**20,
    "pids": 3,
    "blkio": {"read": 1, "write": 2},
    "networks": {"eth0": {"rx_bytes": 1, "rx_packets": 1, "tx_bytes": 2, "tx_packets": 2}},
    "read_at": "2026-01-01T00:00:00.000000000Z",
}


def test_stats_asks_the_agent(viewer, team, host, broker, client_for, fake_agent):
    container = make_container(team, host)
    fake_agent["agent.container_stats"] = SAMPLE
    response = client_for(viewer).get(url(container, "stats/"))
    assert response.status_code == 200, response.content
    assert response.json() == SAMPLE
    assert sent(broker, host) == [("agent.container_stats", [container.id])]


@pytest.mark.parametrize("state", ["created", "exited", "pending"])
def test_stats_of_a_stopped_container_is_409(viewer, team, host, client_for, state):
    container = make_container(team, host, state=state)
    response = client_for(viewer).get(url(container, "stats/"))
    assert response.status_code == 409


def test_stats_refused_by_the_agent_is_409(owner, team, host, client_for, fake_agent):
    container = make_container(team, host)
    fake_agent["agent.container_stats"] = agent_exception("RuntimeError_", "is not running")
    assert client_for(owner).get(url(container, "stats/")).status_code == 409


def parse_events(raw: bytes) -> list[dict]:
    """Server-Sent Events as dicts: {"event", "id", "data"} (comments dropped)."""
    events = []
    for block in raw.decode().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            events.append(fields)
    return events


def test_stats_stream_computes_cpu_percent_and_ends_when_the_container_stops(
    owner, team, host, monkeypatch
):
    monkeypatch.setattr(streams, "STATS_INTERVAL", 0.05)
    container = make_container(team, host)
    samples = iter(
        [
            SAMPLE,
            {**SAMPLE, "cpu_usage_ns": 1_500_000_000, "read_at": "2026-01-01T00:00:01Z"},
            {**SAMPLE, "cpu_usage_ns": 3_500_000_000, "read_at": "2026-01-01T00:00:02Z"},
        ]
    )

    def fake_call_host(target, task, args, timeout):
        assert (task, args) == ("agent.container_stats", [container.id])
        answer = next(samples, None)
        if answer is None:  # the third sample was the last: now it has stopped
            Container.objects.filter(pk=container.pk).update(state=State.EXITED)
            from berth.errors import Conflict

            raise Conflict("not running")
        return answer

    monkeypatch.setattr(services, "call_host", fake_call_host)

    client = async_client(owner)

    async def scenario():
        response = await client.get(
            url(container, "stats/?stream=1"), headers={"Accept": "text/event-stream"}
        )
        assert response["Content-Type"] == "text/event-stream"
        return await read_body(response.streaming_content)

    events = parse_events(async_to_sync(scenario)())
    assert [event.get("event") for event in events] == [None, None, None, "end"]
    assert events[0]["data"]["cpu_percent"] is None
    assert events[1]["data"]["cpu_percent"] == 50.0
    assert events[2]["data"]["cpu_percent"] == 200.0
    assert events[1]["data"]["memory_usage"] == SAMPLE["memory_usage"]
    assert events[3]["data"] == {"state": "exited"}


def test_stats_stream_reports_an_unreachable_host_as_an_error_event(owner, team, host, monkeypatch):
    from berth.errors import HostUnavailable

    monkeypatch.setattr(streams, "STATS_INTERVAL", 0.01)
    container = make_container(team, host)
    answers = iter([SAMPLE])

    def fake_call_host(target, task, args, timeout):
        answer = next(answers, None)
        if answer is None:
            raise HostUnavailable(f"host {host.name} did not answer within 10s")
        return answer

    monkeypatch.setattr(services, "call_host", fake_call_host)

    client = async_client(owner)

    async def scenario():
        response = await client.get(url(container, "stats/?stream=1"))
        return await read_body(response.streaming_content)

    events = parse_events(async_to_sync(scenario)())
    assert events[-1]["event"] == "error"
    assert events[-1]["data"]["error"]["code"] == "host_unavailable"


def test_cpu_percent():
    later = {"cpu_usage_ns": 2_000_000_000, "read_at": "2026-01-01T00:00:00.500000000Z"}
    assert streams.cpu_percent(SAMPLE, later) == 200.0
    assert streams.cpu_percent(SAMPLE, SAMPLE) is None  # no time passed
    assert streams.cpu_percent(SAMPLE, {"cpu_usage_ns": 5}) is None


# ---- the real ASGI application ------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_asgi_stats_stream_stops_when_the_client_disconnects(owner, team, host, monkeypatch):
    """Through berth.asgi.application as uvicorn drives it: a disconnect ends the stream."""
    from asgiref.testing import ApplicationCommunicator

    from apps.accounts.services import create_token
    from berth.asgi import application

    monkeypatch.setattr(streams, "STATS_INTERVAL", 0.05)
    container = make_container(team, host)
    calls = []

    def fake_call_host(target, task, args, timeout):
        calls.append(task)
        return SAMPLE

    monkeypatch.setattr(services, "call_host", fake_call_host)
    _, key = create_token(owner)
    path = f"/api/containers/{container.id}/stats/"
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"stream=1",
        "root_path": "",
        "headers": [
            (b"host", b"localhost"),
            (b"accept", b"text/event-stream"),
            (b"authorization", f"Token {key}".encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("localhost", 80),
    }

    async def scenario():
        import asyncio

        comm = ApplicationCommunicator(application, scope)
        await comm.send_input({"type": "http.request", "body": b"", "more_body": False})
        start = await comm.receive_output(5)
        bodies = [await comm.receive_output(5) for _ in range(3)]
        await comm.send_input({"type": "http.disconnect"})
        await comm.wait(5)  # the application finished: nothing keeps streaming
        count = len(calls)
        await asyncio.sleep(0.3)
        return start, bodies, count

    start, bodies, count = async_to_sync(scenario)()
    assert start["status"] == 200
    assert all(body["more_body"] for body in bodies)
    assert b"cpu_percent" in bodies[0]["body"]
    assert len(calls) == count  # no more samples after the disconnect
