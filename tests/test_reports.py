"""apply_report: compare-and-set on state_seq, row deletion on ``removed``, and the
state event broadcast to the team after commit."""

import pytest
from asgiref.sync import async_to_sync

from apps.containers import tasks
from apps.containers.choices import State
from apps.containers.events import team_group
from apps.containers.models import Container
from apps.containers.services import apply_report
from tests.fixtures import BUSYBOX

pytestmark = pytest.mark.django_db


@pytest.fixture
def container(team, host):
    return Container.objects.create(
        name="web", team=team, host=host, image=host.images.get(), image_reference=BUSYBOX
    )


def report(seq, state="running", **extra):
    body = {
        "seq": seq,
        "state": state,
        "pid": 42,
        "exit_code": None,
        "started_at": "2026-01-01T00:00:00.000000001Z",
        "finished_at": None,
        "error": "",
    }
    body.update(extra)
    return body


def test_newer_report_is_applied(container):
    assert apply_report(container.id, report(2)) is True
    container.refresh_from_db()
    assert (container.state, container.state_seq, container.pid) == ("running", 2, 42)
    assert container.started_at.year == 2026


def test_older_or_equal_report_is_ignored(container):
    apply_report(container.id, report(5, "exited", exit_code=3, finished_at="2026-01-01T00:01:00Z"))
    assert apply_report(container.id, report(4, "running")) is False
    assert apply_report(container.id, report(5, "running")) is False
    container.refresh_from_db()
    assert (container.state, container.state_seq, container.exit_code) == ("exited", 5, 3)


def test_reports_out_of_order_end_at_the_newest(container):
    for seq in (3, 1, 2):
        apply_report(container.id, report(seq, ["created", "running", "exited"][seq - 1]))
    container.refresh_from_db()
    assert (container.state, container.state_seq) == ("exited", 3)


def test_removed_report_deletes_the_row(container):
    assert apply_report(container.id, report(2**31 - 1, "removed")) is True
    assert not Container.objects.filter(pk=container.pk).exists()


def test_stale_removed_report_keeps_the_row(container):
    apply_report(container.id, report(7))
    assert apply_report(container.id, report(6, "removed")) is False
    assert Container.objects.filter(pk=container.pk).exists()


def test_report_for_an_unknown_container_is_ignored(db):
    assert apply_report("f" * 64, report(1)) is False


def test_agent_failure_report_shows_the_error(container):
    apply_report(container.id, report(1, "exited", pid=None, exit_code=128, error="no such file"))
    container.refresh_from_db()
    assert (container.state, container.exit_code, container.error) == (
        "exited",
        128,
        "no such file",
    )


@pytest.mark.parametrize(
    "bad",
    [
        "not a dict",
        {"state": "running"},
        report(-1),
        report(True),
        report(1, "pending"),
        report(1, pid="42"),
        report(1, started_at="yesterday"),
    ],
)
def test_malformed_reports_are_rejected(container, bad):
    with pytest.raises(ValueError):
        apply_report(container.id, bad)
    container.refresh_from_db()
    assert container.state_seq == 0


def test_report_state_task_applies_the_report(container):
    tasks.report_state(container.id, report(3, "exited", exit_code=0))
    container.refresh_from_db()
    assert (container.state, container.exit_code) == (State.EXITED, 0)


def subscribe(layer, team_id) -> str:
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(team_group(team_id), channel)
    return channel


def test_applied_report_is_broadcast_after_commit(
    container, memory_layer, django_capture_on_commit_callbacks
):
    channel = subscribe(memory_layer, container.team_id)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        apply_report(container.id, report(2, "exited", exit_code=0))
    assert len(callbacks) == 1  # nothing is sent before the commit
    callbacks[0]()
    message = async_to_sync(memory_layer.receive)(channel)
    assert message["type"] == "container.event"
    assert message["event"] == {
        "type": "container.state",
        "container": {
            "id": container.id,
            "name": "web",
            "team": "alpha",
            "host": container.host.name,
            "state": "exited",
            "seq": 2,
            "exit_code": 0,
            "error": "",
            "started_at": "2026-01-01T00:00:00+00:00",
            "finished_at": None,
            "oom_killed": False,
            "restart_count": 0,
            "health": "",
        },
    }


def test_ignored_report_broadcasts_nothing(container, django_capture_on_commit_callbacks):
    apply_report(container.id, report(5))
    with django_capture_on_commit_callbacks() as callbacks:
        apply_report(container.id, report(4))
    assert callbacks == []


def test_removal_is_broadcast_with_state_removed(
    container, memory_layer, django_capture_on_commit_callbacks
):
    channel = subscribe(memory_layer, container.team_id)
    with django_capture_on_commit_callbacks(execute=True):
        apply_report(container.id, report(9, "removed"))
    message = async_to_sync(memory_layer.receive)(channel)
    assert message["event"]["container"]["state"] == "removed"
    assert message["event"]["container"]["id"] == container.id


def test_broadcast_failure_does_not_break_the_report(
    container, settings, django_capture_on_commit_callbacks
):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},  # nothing listens on port 1
        }
    }
    with django_capture_on_commit_callbacks(execute=True):
        assert apply_report(container.id, report(2)) is True
    container.refresh_from_db()
    assert container.state == "running"
