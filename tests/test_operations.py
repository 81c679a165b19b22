"""Operations: agent reports (progress and finish, compare-and-set), the images they bring,
the images.sync report, events, the tasks' names and the read-only API."""

import pytest
from asgiref.sync import async_to_sync

from apps.hosts.models import Host
from apps.images.models import Image
from apps.operations import services, tasks
from apps.operations.choices import OperationKind, OperationStatus
from apps.operations.models import Operation
from berth.celery import app as celery_app
from tests.fixtures import BUSYBOX, image_report, make_host, queued_messages

pytestmark = pytest.mark.django_db

APP = "127.0.0.1:5000/app:1"
PROGRESS = {
    "layers": {"sha256:" + "1" * 64: {"state": "downloading", "done": 10, "total": 100}},
    "done": 10,
    "total": 100,
}


def make_operation(
    team, host, *, kind=OperationKind.PULL, status=OperationStatus.QUEUED, user=None
):
    return Operation.objects.create(
        kind=kind, team=team, host=host, target=APP, status=status, user=user
    )


# ---- reports ------------------------------------------------------------------------------


def test_progress_moves_a_queued_operation_to_running(team, host):
    operation = make_operation(team, host)
    assert services.record_progress(operation.id, PROGRESS) is True
    operation.refresh_from_db()
    assert operation.status == OperationStatus.RUNNING
    assert operation.progress == PROGRESS
    assert operation.started_at is not None
    first_start = operation.started_at
    assert services.record_progress(operation.id, {**PROGRESS, "done": 50}) is True
    operation.refresh_from_db()
    assert operation.progress["done"] == 50
    assert operation.started_at == first_start  # set once


def test_progress_after_the_finish_is_ignored(team, host):
    operation = make_operation(team, host)
    services.record_progress(operation.id, PROGRESS)
    assert services.finish_operation(operation.id, {"ok": True, "error": "", "images": []})
    assert services.record_progress(operation.id, {"done": 99, "total": 100}) is False
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.progress == PROGRESS


def test_progress_for_an_unknown_operation_is_ignored(db):
    assert services.record_progress("nope", PROGRESS) is False


def test_malformed_progress_is_rejected(team, host):
    operation = make_operation(team, host)
    from berth.errors import InvalidInput

    with pytest.raises(InvalidInput, match="progress must be an object"):
        services.record_progress(operation.id, ["not", "a", "dict"])
    operation.refresh_from_db()
    assert operation.status == OperationStatus.QUEUED


def test_finished_pull_adds_the_image_to_the_operations_team(team, other_team, host):
    operation = make_operation(team, host)
    report = image_report(APP, repo_digests=[f"127.0.0.1:5000/app@sha256:{'d' * 64}"])
    assert services.finish_operation(operation.id, {"ok": True, "error": "", "images": [report]})
    operation.refresh_from_db()
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.finished_at is not None and operation.started_at is not None
    assert operation.error == ""
    assert operation.result["images"][0]["reference"] == APP
    image = Image.objects.get(host=host, reference=APP)
    assert image.team == team
    assert image.repo_digests == report["repo_digests"]
    assert image.history == [{"created_by": "ADD rootfs.tar /"}]
    assert image.size == 1234 and image.config == {"Cmd": ["sh"]}


def test_a_repeated_finish_changes_nothing(team, host):
    operation = make_operation(team, host)
    services.finish_operation(operation.id, {"ok": False, "error": "manifest unknown"})
    assert (
        services.finish_operation(operation.id, {"ok": True, "images": [image_report(APP)]})
        is False
    )
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert operation.error == "manifest unknown"
    assert not Image.objects.filter(reference=APP).exists()


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        ("oops", "malformed result"),
        ({"error": "x"}, "'ok' is None"),
        ({"ok": "yes"}, "not a boolean"),
        ({"ok": True, "images": "all"}, "'images' is not a list"),
        ({"ok": False}, "without a reason"),
    ],
)
def test_malformed_finish_fails_the_operation(team, host, result, reason):
    operation = make_operation(team, host, status=OperationStatus.RUNNING)
    assert services.finish_operation(operation.id, result) is True
    operation.refresh_from_db()
    assert operation.status == OperationStatus.FAILED
    assert reason in operation.error


def test_two_teams_pulling_one_reference_get_a_row_each(team, other_team, host):
    for owner_team in (team, other_team):
        operation = make_operation(owner_team, host)
        services.finish_operation(operation.id, {"ok": True, "images": [image_report(APP)]})
    assert sorted(Image.objects.filter(reference=APP).values_list("team__slug", flat=True)) == [
        "alpha",
        "beta",
    ]


def test_pulling_a_system_image_adds_no_team_row(team, host):
    operation = make_operation(team, host)
    services.finish_operation(operation.id, {"ok": True, "images": [image_report(BUSYBOX)]})
    [row] = Image.objects.filter(reference=BUSYBOX)
    assert row.team is None
    assert row.image_id == "sha256:" + "e" * 64  # refreshed


def test_a_push_only_refreshes_existing_rows(team, host):
    operation = make_operation(team, host, kind=OperationKind.PUSH)
    digests = ["127.0.0.1:5000/busybox@sha256:" + "f" * 64]
    result = {
        "ok": True,
        "images": [image_report(BUSYBOX, repo_digests=digests), image_report(APP)],
    }
    services.finish_operation(operation.id, result)
    assert Image.objects.get(reference=BUSYBOX).repo_digests == digests
    assert not Image.objects.filter(reference=APP).exists()


@pytest.mark.django_db(transaction=True)
def test_broker_failure_when_starting_fails_the_operation(owner, team, host, monkeypatch):
    """In autocommit (as in a request) the send runs when start_operation's block commits."""
    from kombu.exceptions import OperationalError

    from apps.hosts import services as host_services
    from berth.errors import HostUnavailable

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(host_services.celery_app, "send_task", refuse)
    with pytest.raises(HostUnavailable):
        services.start_operation(
            OperationKind.PULL, team=team, host=host, user=owner, task="agent.image_pull"
        )
    operation = Operation.objects.get()
    assert operation.status == OperationStatus.FAILED
    assert "broker is unreachable" in operation.error


# ---- images.sync --------------------------------------------------------------------------


def test_sync_refreshes_and_drops_rows_but_never_adds_them(team, host):
    from apps.images import tasks as image_tasks

    Image.objects.create(host=host, team=team, reference=APP, size=1)
    image_tasks.sync(
        host.name,
        [image_report(APP, size=99), image_report("127.0.0.1:5000/new:1")],
    )
    refreshed = Image.objects.get(reference=APP)
    assert (refreshed.team, refreshed.size) == (team, 99)
    # A reference no row knows came from an operation or tag whose report adds it
    # for the right team; as a system row it would be visible to every team.
    assert not Image.objects.filter(reference="127.0.0.1:5000/new:1").exists()
    assert not Image.objects.filter(reference=BUSYBOX).exists()  # not reported: gone


def test_sync_from_an_unknown_host_is_ignored(db):
    from apps.images import tasks as image_tasks

    image_tasks.sync("ghost", [image_report(APP)])
    assert not Host.objects.exists() and not Image.objects.exists()


def test_register_does_not_give_a_team_image_a_shared_twin(team):
    from apps.hosts.services import register_host

    host = make_host(images=())
    Image.objects.create(host=host, team=team, reference=APP)
    register_host({"name": host.name, "images": [image_report(APP), image_report(BUSYBOX)]})
    rows = {(row.reference, row.team_id) for row in Image.objects.filter(host=host)}
    assert rows == {(APP, team.pk), (BUSYBOX, None)}


# ---- tasks --------------------------------------------------------------------------------


def test_task_names_follow_the_protocol_and_go_to_control():
    celery_app.loader.import_default_modules()
    for name in (
        "images.operation_progress",
        "images.operation_finished",
        "images.sync",
        "operations.cleanup_transfers",
    ):
        assert name in celery_app.tasks
        assert celery_app.amqp.router.route({}, name)["queue"].name == "control"


def test_tasks_call_the_services(team, host):
    operation = make_operation(team, host)
    tasks.operation_progress(operation.id, PROGRESS)
    assert Operation.objects.get().status == OperationStatus.RUNNING
    tasks.operation_finished(operation.id, {"ok": True, "images": [image_report(APP)]})
    assert Operation.objects.get().status == OperationStatus.SUCCEEDED
    assert Image.objects.filter(reference=APP, team=team).exists()


def test_cleanup_is_scheduled(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["operations.cleanup_transfers"]
    assert entry["task"] == "operations.cleanup_transfers"


# ---- events -------------------------------------------------------------------------------


def test_progress_and_finish_are_broadcast_after_commit(
    team, host, memory_layer, django_capture_on_commit_callbacks
):
    from apps.operations.events import team_group

    operation = make_operation(team, host)
    async_to_sync(memory_layer.group_add)(team_group(team.pk), "listener")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.record_progress(operation.id, PROGRESS)
    assert len(callbacks) == 1  # nothing is sent before the commit
    callbacks[0]()
    with django_capture_on_commit_callbacks(execute=True):
        services.finish_operation(operation.id, {"ok": False, "error": "denied"})
    first = async_to_sync(memory_layer.receive)("listener")
    second = async_to_sync(memory_layer.receive)("listener")
    assert first["type"] == "operation.event"
    assert first["event"]["type"] == "operation.state"
    assert first["event"]["operation"]["status"] == "running"
    assert first["event"]["operation"]["progress"] == PROGRESS
    assert second["event"]["operation"] | {"finished_at": None, "created_at": None} == {
        "id": operation.id,
        "kind": "pull",
        "status": "failed",
        "team": "alpha",
        "host": host.name,
        "target": APP,
        "progress": PROGRESS,
        "error": "denied",
        "created_at": None,
        "started_at": second["event"]["operation"]["started_at"],
        "finished_at": None,
    }


# ---- API ----------------------------------------------------------------------------------


def test_operation_json(owner, team, host, client_for):
    operation = make_operation(team, host, user=owner)
    body = client_for(owner).get(f"/api/operations/{operation.id}/").json()
    assert body == {
        "id": operation.id,
        "kind": "pull",
        "status": "queued",
        "team": "alpha",
        "user": owner.username,
        "host": host.name,
        "target": APP,
        "progress": {},
        "result": {},
        "error": "",
        "created_at": body["created_at"],
        "started_at": None,
        "finished_at": None,
        "download_url": None,
    }
    assert len(operation.id) == 32


def test_operations_are_team_scoped_and_filterable(
    owner, viewer, outsider, team, other_team, host, client_for
):
    mine = make_operation(team, host)
    make_operation(team, host, kind=OperationKind.PUSH, status=OperationStatus.FAILED)
    theirs = make_operation(other_team, host)
    assert client_for(viewer).get("/api/operations/").json()["count"] == 2
    assert client_for(viewer).get(f"/api/operations/{mine.id}/").status_code == 200
    response = client_for(owner).get(f"/api/operations/{theirs.id}/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client_for(outsider).get(f"/api/operations/{mine.id}/").status_code == 404
    rows = client_for(owner).get("/api/operations/?status=failed").json()["results"]
    assert [row["kind"] for row in rows] == ["push"]
    rows = client_for(owner).get("/api/operations/?kind=pull").json()["results"]
    assert [row["id"] for row in rows] == [mine.id]
    assert client_for(owner).get(f"/api/operations/?host={host.name}").json()["count"] == 2


def test_bad_filters_are_400(owner, client_for):
    response = client_for(owner).get("/api/operations/?status=bogus")
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_operations_are_read_only(owner, team, host, client_for):
    operation = make_operation(team, host)
    client = client_for(owner)
    assert client.post("/api/operations/", {}, format="json").status_code == 405
    assert client.delete(f"/api/operations/{operation.id}/").status_code == 405


def test_anonymous_is_401(db):
    from rest_framework.test import APIClient

    assert APIClient().get("/api/operations/").status_code == 401


def test_pull_via_api_reaches_the_queue_and_the_report_closes_it(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    """The whole round trip minus the agent: API → Redis message → reports → image row."""
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post("/api/images/pull/", {"reference": APP}, format="json")
    assert response.status_code == 202, response.content
    [message] = queued_messages(broker, host.name)
    operation_id = message["args"][0]
    assert operation_id == response.json()["id"]
    tasks.operation_progress(operation_id, PROGRESS)
    tasks.operation_finished(operation_id, {"ok": True, "error": "", "images": [image_report(APP)]})
    body = client_for(owner).get(f"/api/operations/{operation_id}/").json()
    assert body["status"] == "succeeded" and body["progress"] == PROGRESS
    images = client_for(owner).get("/api/images/").json()["results"]
    assert {row["reference"]: row["team"] for row in images}[APP] == "alpha"


def test_untagged_loaded_images_keep_their_id_as_reference(team):
    """An untagged image is reported by its id; the team that loaded it sees it (to tag it),
    and registration never shares one as a system image."""
    from apps.hosts.services import register_host

    host = make_host(images=())
    dangling = "sha256:" + "9" * 64
    operation = make_operation(team, host, kind=OperationKind.LOAD)
    services.finish_operation(operation.id, {"ok": True, "images": [image_report(dangling)]})
    assert Image.objects.get(reference=dangling).team == team
    other = make_host(images=())
    register_host({"name": other.name, "images": [image_report("sha256:" + "8" * 64)]})
    assert not other.images.exists()
