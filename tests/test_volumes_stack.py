"""Volumes through the whole path (REST API, control plane, agent, engine), as `make up` runs."""

import secrets
import time

import pytest

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


def run(api, command, mounts, wait=("exited",)):
    status, created = api.json(
        "POST", "/api/containers/", {"image": "busybox", "command": command, "mounts": mounts}
    )
    assert status == 201, created
    row = api.wait_state(created["id"], set(wait), timeout=60)
    status, logs = api.call("GET", f"/api/containers/{created['id']}/logs/")
    assert status == 200
    return row, logs.decode()


def remove_container(api, container_id, query=""):
    status, body = api.call("DELETE", f"/api/containers/{container_id}/?force=1{query}")
    assert status in (200, 202, 204), body
    deadline = time.monotonic() + 60
    while api.call("GET", f"/api/containers/{container_id}/")[0] != 404:
        assert time.monotonic() < deadline, "removed container still listed"
        time.sleep(0.1)


def volume_named(api, name):
    _, listed = api.json("GET", "/api/volumes/")
    return next((row for row in listed["results"] if row["name"] == name), None)


def test_named_volume_outlives_its_writer_and_is_refused_removal_while_used(stack):
    _, api = stack
    name = f"notes-{secrets.token_hex(3)}"
    first, logs = run(api, ["sh", "-c", "echo kept > /data/note && echo ok"], [f"{name}:/data"])
    assert first["exit_code"] == 0 and logs == "ok\n"
    remove_container(api, first["id"])
    volume = volume_named(api, name)
    assert volume is not None and not volume["anonymous"]
    second, logs = run(api, ["cat", "/data/note"], [f"{name}:/data:ro"])
    assert logs == "kept\n"
    status, shown = api.json("GET", f"/api/volumes/{volume['id']}/")
    assert status == 200 and shown["in_use_by"] == [second["id"]] and shown["size"] > 0
    status, refused = api.json("DELETE", f"/api/volumes/{volume['id']}/?force=1")
    assert status == 409 and "in use" in refused["error"]["message"]
    remove_container(api, second["id"])
    status, removed = api.json("DELETE", f"/api/volumes/{volume['id']}/")
    assert status == 200 and removed["removed"] == [name]
    assert volume_named(api, name) is None


def test_read_only_mounts_refuse_writes_from_inside(stack):
    _, api = stack
    name = f"ro-{secrets.token_hex(3)}"
    row, logs = run(api, ["sh", "-c", "echo x > /data/f"], [f"{name}:/data:ro"])
    assert row["exit_code"] != 0 and "Read-only file system" in logs
    remove_container(api, row["id"])
    assert api.call("DELETE", f"/api/volumes/{volume_named(api, name)['id']}/")[0] == 200


def test_anonymous_volumes_go_with_rm_v_and_named_ones_stay(stack):
    _, api = stack
    name = f"stays-{secrets.token_hex(3)}"
    row, _ = run(api, ["true"], ["/scratch", f"{name}:/named"])
    _, shown = api.json("GET", f"/api/containers/{row['id']}/")
    [anonymous] = [m["source"] for m in shown["options"]["mounts"] if m.get("anonymous")]
    assert volume_named(api, anonymous) is not None
    remove_container(api, row["id"], "&volumes=1")
    deadline = time.monotonic() + 60
    while volume_named(api, anonymous) is not None:
        assert time.monotonic() < deadline, "anonymous volume still listed"
        time.sleep(0.1)
    volume = volume_named(api, name)
    assert volume is not None
    assert api.call("DELETE", f"/api/volumes/{volume['id']}/")[0] == 200


def test_create_and_prune_through_the_agent(stack):
    _, api = stack
    name = f"made-{secrets.token_hex(3)}"
    status, made = api.json("POST", "/api/volumes/", {"name": name, "labels": {"k": "v"}})
    assert status == 201, made
    status, shown = api.json("GET", f"/api/volumes/{made['id']}/")
    assert status == 200 and shown["labels"] == {"k": "v"} and shown["in_use_by"] == []
    status, pruned = api.json("POST", "/api/volumes/prune/", {"all": True, "labels": ["k=v"]})
    assert status == 200 and pruned["deleted"] == [name], pruned
    assert volume_named(api, name) is None
