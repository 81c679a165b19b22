"""Networks through the whole stack: a team network made on the host by its agent,
containers finding each other by name on it, a published port reached from the host,
connect and disconnect, and removal."""

import time
import urllib.request

import pytest

from tests.conftest import free_port

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]

HTTPD = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && httpd -f -p 80 -h /www"


def fetch(url: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run(api, **body) -> dict:
    status, created = api.json("POST", "/api/containers/", {"image": "busybox", **body})
    assert status == 201, created
    return created


def wait_for(predicate, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition never held")


def test_a_team_network_end_to_end(stack):
    layout, api = stack
    created = []
    try:
        status, network = api.json("POST", "/api/networks/",
                                   {"name": "shop", "host": layout.host_name})
        assert status == 201, network
        status, other = api.json("POST", "/api/networks/",
                                 {"name": "back", "host": layout.host_name})
        assert status == 201, other
        port = free_port()
        web = run(api, name="shop-web", hostname="shop-web", command=["sh", "-c", HTTPD],
                  network="shop", network_aliases=["store"],
                  ports=[f"127.0.0.1:{port}:80", "80"])
        created.append(web["id"])
        api.wait_state(web["id"], {"running"})
        ports = wait_for(lambda: api.json(
            "GET", f"/api/networks/containers/{web['id']}/")[1]["ports"])
        ephemeral = next(p["host_port"] for p in ports if not p["host_ip"])
        assert ephemeral > 0 and {p["host_port"] for p in ports} == {port, ephemeral}
        assert "hello-from-shop-web" in fetch(f"http://127.0.0.1:{port}/")
        assert "hello-from-shop-web" in fetch(f"http://127.0.0.1:{ephemeral}/")

        client = run(api, name="shop-client", command=["nslookup", "store"], network="shop")
        created.append(client["id"])
        api.wait_state(client["id"], {"exited"})
        _, logs = api.call("GET", f"/api/containers/{client['id']}/logs/")
        status, shown = api.json("GET", f"/api/networks/{network['id']}/")
        members = {m["name"]: m for m in shown["members"]}
        assert set(members) == {"shop-web", "shop-client"}
        assert members["shop-web"]["ip"].encode() in logs

        status, answer = api.json("POST", f"/api/networks/{other['id']}/connect/",
                                  {"container": "shop-web", "aliases": ["api"]})
        assert status == 200, answer
        assert {name.split(".", 1)[1] for name in answer["networks"]} == {"shop", "back"}
        status, shown = api.json("GET", f"/api/networks/{other['id']}/")
        assert [m["name"] for m in shown["members"]] == ["shop-web"]
        status, answer = api.json("POST", f"/api/networks/{other['id']}/disconnect/",
                                  {"container": "shop-web"})
        assert status == 200 and [n.split(".", 1)[1] for n in answer["networks"]] == ["shop"]

        status, refused = api.json("DELETE", f"/api/networks/{network['id']}/")
        assert status == 409, refused
    finally:
        for container_id in created:
            api.call("DELETE", f"/api/containers/{container_id}/?force=true")
    for container_id in created:
        wait_for(lambda cid=container_id: api.call("GET", f"/api/containers/{cid}/")[0] == 404)
    for row in (network, other):
        status, _ = api.call("DELETE", f"/api/networks/{row['id']}/")
        assert status == 204
