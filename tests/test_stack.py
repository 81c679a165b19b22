"""The whole path, started the way `make up` starts it: Redis, the web server,
the control-plane worker and an agent, then `echo hello` through the REST API."""

import os
import time

import pytest

from berth import ctl

from .conftest import Api

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


def test_echo_hello_through_the_api(stack):
    layout, api = stack
    status, created = api.json(
        "POST", "/api/containers/", {"image": "busybox", "command": ["echo", "hello"]}
    )
    assert status == 201, created
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 0
    status, logs = api.call("GET", f"/api/containers/{created['id']}/logs/")
    assert status == 200 and logs == b"hello\n"


def test_host_is_registered_with_its_facts(stack):
    layout, api = stack
    status, host = api.json("GET", f"/api/hosts/{layout.host_name}/")
    assert status == 200, host
    assert host["status"] == "online"
    assert host["kernel"] == os.uname().release
    assert host["cpus"] == os.cpu_count()
    status, images = api.json("GET", "/api/images/")
    references = {image["reference"] for image in images["results"]}
    assert "docker.io/library/busybox:latest" in references


def test_failures_reach_the_row(stack):
    _, api = stack
    status, created = api.json(
        "POST", "/api/containers/", {"image": "busybox", "command": "sh -c 'echo bye >&2; exit 7'"}
    )
    assert status == 201, created
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 7
    status, created = api.json(
        "POST", "/api/containers/", {"image": "busybox", "command": ["no-such-binary"]}
    )
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 127 and "no-such-binary" in row["error"]


def test_stop_and_remove(stack):
    _, api = stack
    _, created = api.json(
        "POST", "/api/containers/", {"image": "busybox", "command": ["sleep", "600"]}
    )
    api.wait_state(created["id"], {"running"})
    status, body = api.json("DELETE", f"/api/containers/{created['id']}/")
    assert status == 409, body
    status, _ = api.call("POST", f"/api/containers/{created['id']}/stop/", {"timeout": 1})
    assert status in (200, 202)
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 137
    status, _ = api.call("DELETE", f"/api/containers/{created['id']}/")
    assert status in (200, 202, 204)
    deadline = time.monotonic() + 20
    while api.call("GET", f"/api/containers/{created['id']}/")[0] != 404:
        assert time.monotonic() < deadline, "removed container still listed"
        time.sleep(0.1)


def test_host_goes_offline_and_comes_back(stack):
    layout, api = stack
    agent_pid = ctl.read_pid(layout.pidfile("agent"))
    os.kill(agent_pid, 19)  # SIGSTOP: heartbeats stop, the process stays
    try:
        deadline = time.monotonic() + 60
        while api.json("GET", f"/api/hosts/{layout.host_name}/")[1]["status"] != "offline":
            assert time.monotonic() < deadline, "host never marked offline"
            time.sleep(0.5)
    finally:
        os.kill(agent_pid, 18)  # SIGCONT
    deadline = time.monotonic() + 30
    while api.json("GET", f"/api/hosts/{layout.host_name}/")[1]["status"] != "online":
        assert time.monotonic() < deadline, "host never came back online"
        time.sleep(0.5)


def test_anonymous_requests_are_refused(stack):
    layout, _ = stack
    anonymous = Api(layout.url, "")
    status, _ = anonymous.call("GET", "/api/containers/")
    assert status in (401, 403)


def _restart_agent(layout, kill_containers: bool = False) -> None:
    """kill -9 the agent (and, to play a host reboot, every shim and container), then start
    it again the way `make up` does."""
    agent = ctl.read_pid(layout.pidfile("agent"))
    os.kill(agent, 9)
    if kill_containers:
        for pid in _pids_under(layout.agent_root):
            os.kill(pid, 9)
    time.sleep(0.5)
    ctl.start(layout, "agent", ctl.commands(layout)["agent"])


def _pids_under(root) -> list[int]:
    """Shims, their zygote and containers of this agent root, from their state files."""
    import json

    pids = []
    for state_file in (root / "containers").glob("*/state.json"):
        state = json.loads(state_file.read_text())
        pids += [p for p in (state.get("shim_pid"), state.get("pid")) if p]
    zygote = root / "zygote.pid"
    if zygote.exists():
        pids.append(int(zygote.read_text()))
    return [p for p in pids if os.path.exists(f"/proc/{p}")]


def test_agent_kill_9_loses_no_container_and_no_log_line(stack):
    layout, api = stack
    script = "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); sleep 0.01; done"
    _, created = api.json("POST", "/api/containers/", {"image": "busybox",
                                                       "command": ["sh", "-c", script]})
    api.wait_state(created["id"], {"running"})
    time.sleep(0.5)
    _restart_agent(layout)
    row = api.wait_state(created["id"], {"exited"}, timeout=60)
    assert row["exit_code"] == 0
    status, text = api.call("GET", f"/api/containers/{created['id']}/logs/")
    assert status == 200
    assert text.decode().split() == [f"line-{i}" for i in range(400)]


def test_host_reboot_brings_back_always_containers(stack):
    layout, api = stack
    _, always = api.json("POST", "/api/containers/", {
        "image": "busybox", "command": ["sleep", "600"], "restart_policy": "always"})
    _, plain = api.json("POST", "/api/containers/", {"image": "busybox",
                                                     "command": ["sleep", "600"]})
    first = api.wait_state(always["id"], {"running"})
    api.wait_state(plain["id"], {"running"})
    _restart_agent(layout, kill_containers=True)
    deadline = time.monotonic() + 60
    while True:
        _, row = api.json("GET", f"/api/containers/{always['id']}/")
        if row["state"] == "running" and row["pid"] != first["pid"]:
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.2)
    assert api.wait_state(plain["id"], {"exited"})["exit_code"] == 255
    for container in (always, plain):
        api.call("DELETE", f"/api/containers/{container['id']}/?force=1")
