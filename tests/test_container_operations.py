"""Operation rows for container actions and exec starts: opened with the agent's message,
closed by the agent's (non-stale) reports, and visible through /api/operations/ to the team."""

import pytest

from apps.containers import execs
from apps.containers.choices import State
from apps.containers.services import apply_report
from apps.operations.choices import OperationKind, OperationStatus
from apps.operations.models import Operation
from tests.fixtures import agent_exception, make_container, queued_messages

pytestmark = pytest.mark.django_db


def url(container, suffix=""):
    return f"/api/containers/{container.id}/{suffix}"


def report(seq, state, **extra):
    return {
        "seq": seq,
        "state": state,
        "pid": 42 if state in ("running", "paused") else None,
        "exit_code": 0 if state == "exited" else None,
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": None,
        "error": "",
        **extra,
    }


def only_operation(**filters) -> Operation:
    [operation] = Operation.objects.filter(**filters)
    return operation


@pytest.fixture
def act(client_for, broker, django_capture_on_commit_callbacks):
    """``act(user, container, action)``: the action through the REST API, messages sent."""

    def run(user, container, action: str, body=None):
        client = client_for(user)
        with django_capture_on_commit_callbacks(execute=True):
            if action == "remove":
                response = client.delete(url(container, "?force=1"))
            else:
                response = client.post(url(container, f"{action}/"), body or {}, format="json")
        assert response.status_code in (200, 202), response.content
        return response

    return run


# (state before, action, task sent, the reported state that means it is done)
ACTIONS = [
    (State.EXITED, "start", "agent.container_start", State.RUNNING),
    (State.RUNNING, "stop", "agent.container_stop", State.EXITED),
    (State.RUNNING, "restart", "agent.container_restart", State.RUNNING),
    (State.RUNNING, "kill", "agent.container_kill", State.EXITED),
    (State.RUNNING, "pause", "agent.container_pause", State.PAUSED),
    (State.PAUSED, "unpause", "agent.container_unpause", State.RUNNING),
    (State.RUNNING, "remove", "agent.container_remove", State.REMOVED),
]


# ---- opened with the message --------------------------------------------------------------


@pytest.mark.parametrize(("before", "action", "task", "done"), ACTIONS)
def test_each_action_opens_a_queued_operation(
    operator, team, host, broker, act, before, action, task, done
):
    container = make_container(team, host, state=before)
    act(operator, container, action)
    operation = only_operation()
    assert (operation.kind, operation.status) == (action, OperationStatus.QUEUED)
    assert (operation.target, operation.user, operation.team, operation.host) == (
        container.id,
        operator,
        team,
        host,
    )
    assert operation.started_at is None and operation.finished_at is None
    assert [m["task"] for m in queued_messages(broker, host.name)] == [task]


def test_create_opens_an_operation_for_the_new_container(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post("/api/containers/", {"image": "busybox"}, format="json")
    assert response.status_code == 201, response.content
    operation = only_operation()
    assert (operation.kind, operation.target, operation.user, operation.host) == (
        OperationKind.CREATE,
        response.json()["id"],
        owner,
        host,
    )
    assert [m["task"] for m in queued_messages(broker, host.name)] == ["agent.container_run"]


def test_a_refused_action_opens_nothing(owner, team, host, client_for):
    container = make_container(team, host, state=State.RUNNING)
    assert client_for(owner).post(url(container, "start/")).status_code == 409
    assert not Operation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_broker_failure_fails_the_operation(owner, team, host, client_for, monkeypatch):
    from kombu.exceptions import OperationalError

    from apps.hosts import services as host_services

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    container = make_container(team, host, state=State.EXITED)
    monkeypatch.setattr(host_services.celery_app, "send_task", refuse)
    assert client_for(owner).post(url(container, "start/")).status_code == 503
    operation = only_operation()
    assert operation.status == OperationStatus.FAILED
    assert "broker is unreachable" in operation.error


# ---- closed by reports --------------------------------------------------------------------


@pytest.mark.parametrize(("before", "action", "task", "done"), ACTIONS)
def test_the_report_of_the_new_state_succeeds_it(
    operator, team, host, act, before, action, task, done
):
    container = make_container(team, host, state=before, state_seq=3)
    act(operator, container, action)
    assert apply_report(container.id, report(4, done))
    operation = only_operation()
    assert operation.status == OperationStatus.SUCCEEDED, operation.error
    assert operation.error == ""
    assert operation.result["state"] == done
    assert operation.created_at <= operation.started_at <= operation.finished_at


def test_create_succeeds_on_created_or_running(owner, team, host, client_for):
    for name, state in (("a", State.CREATED), ("b", State.RUNNING)):
        body = {"image": "busybox", "name": name}
        container_id = client_for(owner).post("/api/containers/", body, format="json").json()["id"]
        assert apply_report(container_id, report(1, state))
        assert only_operation(target=container_id).status == OperationStatus.SUCCEEDED


def test_the_agents_error_fails_it(owner, team, host, act):
    container = make_container(team, host, state=State.EXITED, state_seq=3)
    act(owner, container, "start")
    message = 'exec: "nope": executable file not found in $PATH'
    assert apply_report(container.id, report(4, State.EXITED, exit_code=127, error=message))
    operation = only_operation()
    assert (operation.status, operation.error) == (OperationStatus.FAILED, message)
    assert operation.finished_at is not None


def test_a_run_the_agent_could_not_create_fails(owner, team, host, client_for):
    response = client_for(owner).post("/api/containers/", {"image": "busybox"}, format="json")
    failure = report(1, State.EXITED, exit_code=128, error="no space left on device")
    assert apply_report(response.json()["id"], failure)
    operation = only_operation()
    assert (operation.kind, operation.status) == (OperationKind.CREATE, OperationStatus.FAILED)
    assert operation.error == "no space left on device"


def test_stale_and_unrelated_reports_leave_it_open(owner, team, host, act):
    container = make_container(team, host, state=State.RUNNING, state_seq=5)
    act(owner, container, "stop")
    assert not apply_report(container.id, report(4, State.EXITED))  # stale
    assert apply_report(container.id, report(6, State.RUNNING))  # not what stop waits for
    assert only_operation().status == OperationStatus.QUEUED
    assert apply_report(container.id, report(7, State.EXITED))
    assert only_operation().status == OperationStatus.SUCCEEDED


def test_a_report_closes_only_the_oldest_matching_operation(owner, team, host, act):
    container = make_container(team, host, state=State.EXITED, state_seq=1)
    act(owner, container, "start")
    act(owner, container, "start")  # the row is still exited: the agent has not answered
    assert apply_report(container.id, report(2, State.RUNNING))
    first, second = Operation.objects.order_by("created_at", "pk")
    assert (first.status, second.status) == (OperationStatus.SUCCEEDED, OperationStatus.QUEUED)


def test_update_is_closed_by_the_agents_answer(owner, team, host, client_for, fake_agent):
    container = make_container(team, host)
    fake_agent["agent.container_update"] = {"limits": {}, "restart": "no"}
    ok = client_for(owner).post(url(container, "update/"), {"memory": "1g"}, format="json")
    assert ok.status_code == 200
    fake_agent["agent.container_update"] = agent_exception("RuntimeError_", "cpuset: Invalid")
    refused = client_for(owner).post(url(container, "update/"), {"cpuset_cpus": "1"}, format="json")
    assert refused.status_code == 409
    done, failed = Operation.objects.order_by("created_at", "pk")
    assert (done.kind, done.status, done.user) == ("update", OperationStatus.SUCCEEDED, owner)
    assert (failed.status, failed.error) == (OperationStatus.FAILED, "cpuset: Invalid")


# ---- removal ------------------------------------------------------------------------------


def test_removal_succeeds_remove_and_fails_what_is_still_open(owner, team, host, act):
    container = make_container(team, host, state=State.RUNNING, state_seq=1)
    act(owner, container, "pause")  # the host never answers this one
    exec_ = execs.run_exec(owner, container, {"command": ["sleep", "9"]})
    act(owner, container, "remove")
    # The report still carries the error of an earlier failed start: remove is what it answers.
    assert apply_report(container.id, report(2, State.REMOVED, error="old failure"))
    by_kind = {row.kind: row for row in Operation.objects.all()}
    assert by_kind["remove"].status == OperationStatus.SUCCEEDED
    for kind in ("pause", "exec"):
        assert (by_kind[kind].status, by_kind[kind].error) == (
            OperationStatus.FAILED,
            "container removed",
        )
    assert by_kind["exec"].target == exec_.id


def test_auto_removal_is_an_operation_of_nobody(team, host, django_capture_on_commit_callbacks):
    container = make_container(team, host, auto_remove=True, state_seq=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_report(container.id, report(2, State.EXITED))
    operation = only_operation()
    assert (operation.kind, operation.user, operation.status) == ("remove", None, "queued")
    assert apply_report(container.id, report(3, State.REMOVED))
    assert only_operation().status == OperationStatus.SUCCEEDED


# ---- execs --------------------------------------------------------------------------------


def test_exec_operation_follows_the_exec_reports(operator, team, host, client_for, broker):
    container = make_container(team, host)
    body = {"container": container.id, "command": ["sh", "-c", "exit 3"]}
    response = client_for(operator).post("/api/execs/", body, format="json")
    assert response.status_code == 201, response.content
    exec_id = response.json()["id"]
    operation = only_operation()
    assert (operation.kind, operation.target, operation.user, operation.host) == (
        OperationKind.EXEC,
        exec_id,
        operator,
        host,
    )
    assert execs.apply_report(exec_id, {"state": "running", "pid": 7})
    operation.refresh_from_db()
    assert (operation.status, operation.progress) == (OperationStatus.RUNNING, {"pid": 7})
    assert operation.started_at is not None
    assert execs.apply_report(exec_id, {"state": "exited", "exit_code": 3})
    operation.refresh_from_db()
    assert (operation.status, operation.result["exit_code"]) == (OperationStatus.SUCCEEDED, 3)
    assert not execs.apply_report(exec_id, {"state": "failed", "error": "late"})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED


def test_exec_that_could_not_start_fails(owner, team, host):
    container = make_container(team, host)
    exec_ = execs.run_exec(owner, container, {"command": ["nope"]})
    failure = {"state": "failed", "exit_code": 127, "error": "nope: not found"}
    assert execs.apply_report(exec_.id, failure)
    operation = only_operation()
    assert (operation.status, operation.error) == (OperationStatus.FAILED, "nope: not found")


# ---- who sees them ------------------------------------------------------------------------


def test_team_members_see_the_operation_and_outsiders_do_not(
    owner, viewer, outsider, team, host, act, client_for
):
    container = make_container(team, host, state=State.EXITED)
    act(owner, container, "start")
    operation = only_operation()
    for member in (owner, viewer):
        listed = client_for(member).get("/api/operations/?kind=start").json()["results"]
        assert [row["id"] for row in listed] == [operation.id]
        detail = client_for(member).get(f"/api/operations/{operation.id}/").json()
        assert (detail["kind"], detail["target"], detail["user"], detail["host"]) == (
            "start",
            container.id,
            owner.username,
            host.name,
        )
    client = client_for(outsider)
    assert client.get("/api/operations/").json()["results"] == []
    assert client.get(f"/api/operations/{operation.id}/").status_code == 404
