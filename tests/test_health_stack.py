"""Health checks on a live Berth: the agent probes, the row shows the verdict and the probes."""

import time

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


def wait_health(api, container_id, status, timeout=30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, row = api.json("GET", f"/api/containers/{container_id}/")
        if row.get("health_status") == status:
            return row
        time.sleep(0.1)
    raise AssertionError(f"health never became {status}: {row.get('health')}")


def test_starting_healthy_then_unhealthy_and_left_running(stack):
    _, api = stack
    status, created = api.json("POST", "/api/containers/", {
        "image": "busybox", "restart_policy": "always",
        "command": ["sh", "-c", "sleep 1; touch /tmp/ok; sleep 2; rm /tmp/ok; sleep 600"],
        "healthcheck": {"test": "test -f /tmp/ok && echo ok", "interval": "300ms",
                        "retries": 2}})
    assert status == 201, created
    container_id = created["id"]
    try:
        assert wait_health(api, container_id, "starting")["state"] == "running"
        healthy = wait_health(api, container_id, "healthy")
        assert healthy["health"]["log"][-1]["output"] == "ok\n"
        unhealthy = wait_health(api, container_id, "unhealthy")
        assert unhealthy["health"]["failing_streak"] >= 2
        assert unhealthy["health"]["log"][-1]["exit_code"] == 1
        time.sleep(1)
        _, row = api.json("GET", f"/api/containers/{container_id}/")
        assert row["state"] == "running" and row["restart_count"] == 0  # left alone
    finally:
        api.call("DELETE", f"/api/containers/{container_id}/?force=1")


def test_bad_healthcheck_is_a_400(stack):
    _, api = stack
    status, body = api.json("POST", "/api/containers/", {
        "image": "busybox", "command": ["true"], "healthcheck": {"test": ["CMD"]}})
    assert status == 400 and body["error"]["fields"].keys() == {"healthcheck"}
