"""Exec end to end on a live Berth: REST → control plane → agent → container, and the
process's stdio back through Redis."""

import time

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


@pytest.fixture
def sleeper(stack):
    _, api = stack
    _, created = api.json("POST", "/api/containers/",
                          {"image": "busybox", "command": ["sleep", "600"]})
    api.wait_state(created["id"], {"running"})
    yield api, created["id"]
    api.call("DELETE", f"/api/containers/{created['id']}/?force=1")


def wait_exec(api, exec_id, timeout=20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, row = api.json("GET", f"/api/execs/{exec_id}/")
        if row["state"] in ("exited", "failed"):
            return row
        time.sleep(0.05)
    raise AssertionError(f"exec never ended: {row}")


def run(api, container_id, **body) -> tuple[dict, bytes]:
    status, row = api.json("POST", "/api/execs/", {"container": container_id, **body})
    assert status == 201, row
    status, output = api.call("GET", f"/api/execs/{row['id']}/output/")
    assert status == 200
    return wait_exec(api, row["id"]), output


def test_output_and_exit_code(sleeper):
    api, container_id = sleeper
    row, output = run(api, container_id, command=["sh", "-c", "echo out; echo err >&2; exit 3"],
                      env=["GREETING=hi"])
    assert row["state"] == "exited" and row["exit_code"] == 3
    assert sorted(output.split()) == [b"err", b"out"]


def test_stdin_sent_before_the_process_starts_is_delivered(sleeper):
    api, container_id = sleeper
    status, row = api.json("POST", "/api/execs/",
                           {"container": container_id, "command": ["wc", "-c"], "stdin": True})
    assert status == 201
    request_body = b"twelve bytes"
    status, _ = _post_raw(api, f"/api/execs/{row['id']}/input/?close=1", request_body)
    assert status == 204
    _, output = api.call("GET", f"/api/execs/{row['id']}/output/")
    assert output.strip() == b"12"
    assert wait_exec(api, row["id"])["exit_code"] == 0


def _post_raw(api, path, data: bytes):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"{api.base}{path}", data=data, method="POST")
    request.add_header("Authorization", f"Token {api.token}")
    request.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_terminal_with_resize(sleeper):
    api, container_id = sleeper
    status, row = api.json("POST", "/api/execs/",
                           {"container": container_id, "command": ["sh"], "tty": True})
    assert status == 201
    assert api.json("POST", f"/api/execs/{row['id']}/resize/",
                    {"rows": 21, "columns": 77})[0] == 204
    _post_raw(api, f"/api/execs/{row['id']}/input/", b"stty size; tty; exit 2\n")
    _, output = api.call("GET", f"/api/execs/{row['id']}/output/")
    assert b"21 77" in output and b"/dev/pts/" in output
    assert wait_exec(api, row["id"])["exit_code"] == 2


def test_unknown_command_fails_with_127(sleeper):
    api, container_id = sleeper
    row, _ = run(api, container_id, command=["no-such-tool"])
    assert row["state"] == "failed" and row["exit_code"] == 127
    assert "executable file not found" in row["error"]


def test_kill_a_running_exec(sleeper):
    api, container_id = sleeper
    status, row = api.json("POST", "/api/execs/",
                           {"container": container_id, "command": ["sleep", "300"]})
    deadline = time.monotonic() + 20
    while api.json("GET", f"/api/execs/{row['id']}/")[1]["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.json("POST", f"/api/execs/{row['id']}/kill/", {"signal": 9})[0] == 204
    assert wait_exec(api, row["id"])["exit_code"] == 137
    _, listed = api.json("GET", f"/api/execs/?container={container_id}")
    assert row["id"] in [item["id"] for item in listed["results"]]


def test_attach_before_start_feeds_stdin_and_misses_no_output(stack):
    _, api = stack
    status, created = api.json("POST", "/api/containers/", {
        "image": "busybox", "command": ["sh", "-c", "echo ready; read line; echo got $line"],
        "open_stdin": True, "start": False})
    assert status == 201, created
    api.wait_state(created["id"], {"created"})
    status, answer = api.json("POST", f"/api/containers/{created['id']}/attach/")
    assert status == 200, answer
    _post_raw(api, f"/api/containers/{created['id']}/attach/input/", b"hello\n")
    assert api.call("POST", f"/api/containers/{created['id']}/start/")[0] == 202
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 0
    _, text = api.call("GET", f"/api/containers/{created['id']}/logs/events/"
                              f"?follow=0&after={answer['after']}")
    assert b"ready" in text and b"got hello" in text


def test_attach_to_a_terminal(stack):
    _, api = stack
    _, created = api.json("POST", "/api/containers/", {
        "image": "busybox", "command": ["sh"], "tty": True, "open_stdin": True})
    api.wait_state(created["id"], {"running"})
    assert api.json("POST", f"/api/containers/{created['id']}/attach/")[0] == 200
    assert api.json("POST", f"/api/containers/{created['id']}/attach/resize/",
                    {"rows": 19, "columns": 66})[0] == 204
    _post_raw(api, f"/api/containers/{created['id']}/attach/input/", b"stty size; exit 4\n")
    row = api.wait_state(created["id"], {"exited"})
    assert row["exit_code"] == 4
    _, logs = api.call("GET", f"/api/containers/{created['id']}/logs/")
    assert b"19 66" in logs


def test_attach_input_needs_open_stdin(sleeper):
    api, container_id = sleeper
    status, body = _post_raw(api, f"/api/containers/{container_id}/attach/input/", b"x")
    assert status == 409 and b"no open stdin" in body
