"""Health check options and the verdicts agents report, in the control plane."""

import pytest

from apps.containers import health, options
from apps.containers.choices import State
from berth.errors import InvalidInput
from tests.fixtures import make_container

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("given, stored", [
    ({"test": "curl -f localhost"}, {"test": ["CMD-SHELL", "curl -f localhost"]}),
    ({"test": ["CMD", "true"], "interval": "500ms", "timeout": 2, "retries": "4",
      "start_period": "1m"},
     {"test": ["CMD", "true"], "interval": 0.5, "timeout": 2.0, "retries": 4,
      "start_period": 60.0}),
    ({"test": ["NONE"]}, {"test": ["NONE"]}),
    ({"interval": "10s"}, {"interval": 10.0}),
])
def test_healthcheck_options(given, stored):
    assert options.parse_healthcheck(given) == stored


@pytest.mark.parametrize("given", [
    "true", {"test": ["CMD"]}, {"test": ["CMD-SHELL", "a", "b"]}, {"test": []},
    {"interval": "soon"}, {"interval": 0}, {"retries": 0}, {"command": "x"},
])
def test_bad_healthcheck_options(given):
    with pytest.raises(InvalidInput) as raised:
        options.parse_healthcheck(given)
    assert raised.value.field.startswith("healthcheck")


def test_the_spec_carries_the_check():
    spec = options.agent_spec_fields({"healthcheck": {"test": ["CMD", "true"]}}, "no")
    assert spec["healthcheck"] == {"test": ["CMD", "true"]}


def verdict(status, streak=0, output="ok\n"):
    return {"status": status, "failing_streak": streak, "run": "2026-01-01T00:00:00Z",
            "log": [{"start": "a", "end": "b", "exit_code": 0 if status != "unhealthy" else 1,
                     "output": output}]}


def test_a_verdict_is_stored_and_broadcast_on_change(team, host, memory_layer,
                                                     django_capture_on_commit_callbacks):
    container = make_container(team, host)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert health.apply_report(container.id, verdict("healthy"))
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert health.apply_report(container.id, verdict("healthy"))
    assert callbacks == []  # same status: stored, not broadcast
    container.refresh_from_db()
    assert container.health_status == "healthy"
    assert container.health["log"][0]["output"] == "ok\n"


def test_verdicts_about_stopped_containers_and_nonsense_are_ignored(team, host):
    stopped = make_container(team, host, state=State.EXITED)
    assert not health.apply_report(stopped.id, verdict("unhealthy", 3))
    running = make_container(team, host, name="other")
    assert not health.apply_report(running.id, {"status": "great"})
    assert not health.apply_report(running.id, "healthy")
    huge = verdict("unhealthy", 1, output="x" * 100_000)
    assert health.apply_report(running.id, huge)
    running.refresh_from_db()
    assert len(running.health["log"][0]["output"]) == health.OUTPUT_LIMIT
