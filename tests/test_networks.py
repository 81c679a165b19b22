"""The networks REST API and containers' network options on the control plane: what is
stored, what reaches the host's queue, and every refusal (400 with a reason, 404, 409)."""

import pytest

from apps.containers import services as container_services
from apps.networks.models import ContainerNetwork, Network
from tests.fixtures import agent_exception, make_container, make_host, queued_messages

pytestmark = pytest.mark.django_db


def network_report(name, **extra):
    report = {"name": name, "bridge": "berth-ab12cd", "subnet": "10.213.16.0/24",
              "gateway": "10.213.16.1", "internal": False, "default": False}
    report.update(extra)
    return report


def run_spec(broker, host_name) -> dict:
    [message] = [m for m in queued_messages(broker, host_name)
                 if m["task"] == "agent.container_run"]
    return message["args"][1]


def make_network(team, host, name="backend"):
    return Network.objects.create(team=team, host=host, name=name,
                                  engine_name=f"{team.slug}.{name}", bridge="berth-ab12cd",
                                  subnet="10.213.16.0/24", gateway="10.213.16.1")


def create_container(client, body):
    return client.post("/api/containers/", {"image": "busybox", **body}, format="json")


def test_create_asks_the_host_and_stores_what_it_allocated(owner, host, fake_agent, broker,
                                                           client_for):
    fake_agent["agent.network_create"] = network_report("alpha.backend")
    made = client_for(owner).post("/api/networks/", {"name": "backend"}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["team"], body["host"]) == ("backend", "alpha", host.name)
    assert (body["subnet"], body["gateway"], body["bridge"]) == (
        "10.213.16.0/24", "10.213.16.1", "berth-ab12cd")
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.network_create"
    assert message["args"] == ["alpha.backend", None, None, False]
    again = client_for(owner).post("/api/networks/", {"name": "backend"}, format="json")
    assert again.status_code == 409


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"name": "bad name"}, "name", "invalid network"),
    ({"name": "bridge"}, "name", "predefined"),
    ({"name": "ok", "driver": "overlay"}, "driver", "only"),
    ({"name": "ok", "subnet": "10.0.0.0"}, "subnet", "invalid subnet"),
    ({"name": "ok", "gateway": "10.0.0.1"}, "gateway", "needs 'subnet'"),
    ({"name": "ok", "internal": "yes"}, "internal", "true or false"),
    ({"name": "ok", "host": "nowhere"}, "host", "unknown host"),
])
def test_bad_create_requests_are_400s_with_a_reason(owner, host, client_for, body, field,
                                                    message):
    response = client_for(owner).post("/api/networks/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] and message in error["message"]


def test_the_hosts_refusal_is_a_409(owner, host, fake_agent, client_for):
    fake_agent["agent.network_create"] = agent_exception(
        "Conflict", "subnet 192.0.2.0/24 overlaps 192.0.2.0/24, already in use on this host")
    response = client_for(owner).post("/api/networks/", {"name": "lan",
                                                        "subnet": "192.0.2.0/24"},
                                      format="json")
    assert response.status_code == 409 and "overlaps" in response.json()["error"]["message"]
    assert not Network.objects.exists()


def test_other_teams_networks_are_404s(team, other_team, host, outsider, client_for):
    network = make_network(team, host)
    client = client_for(outsider)
    assert client.get(f"/api/networks/{network.pk}/").status_code == 404
    assert client.delete(f"/api/networks/{network.pk}/").status_code == 404
    listed = client.get("/api/networks/").json()
    assert (listed["results"] if isinstance(listed, dict) else listed) == []


def test_a_container_names_its_network_and_ports(team, owner, host, broker, client_for,
                                                 django_capture_on_commit_callbacks):
    make_network(team, host)
    with django_capture_on_commit_callbacks(execute=True):
        response = create_container(client_for(owner), {
            "network": "backend", "network_aliases": ["db"],
            "ports": ["127.0.0.1:8080:80", "53/udp", "9000-9001:90-91",
                      {"container_port": 443, "host_port": "8443"}]})
    assert response.status_code == 201, response.content
    spec = run_spec(broker, host.name)
    assert spec["network_mode"] == "alpha.backend"
    assert spec["networks"] == [{"name": "alpha.backend", "bridge": "berth-ab12cd",
                                 "subnet": "10.213.16.0/24", "gateway": "10.213.16.1",
                                 "aliases": ["db"]}]
    assert spec["ports"] == [
        {"container_port": 80, "protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 8080},
        {"container_port": 53, "protocol": "udp", "host_ip": "", "host_port": 0},
        {"container_port": 90, "protocol": "tcp", "host_ip": "", "host_port": 9000},
        {"container_port": 91, "protocol": "tcp", "host_ip": "", "host_port": 9001},
        {"container_port": 443, "protocol": "tcp", "host_ip": "", "host_port": 8443},
    ]


def test_the_default_is_the_hosts_bridge(owner, host, broker, client_for,
                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = create_container(client_for(owner), {"network": "host"})
    assert response.status_code == 201, response.content
    assert run_spec(broker, host.name)["network_mode"] == "host"
    with django_capture_on_commit_callbacks(execute=True):
        create_container(client_for(owner), {})
    specs = [m["args"][1] for m in queued_messages(broker, host.name)
             if m["task"] == "agent.container_run"]
    assert specs[-1]["network_mode"] == "bridge" and "networks" not in specs[-1]


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"network": "missing"}, "network", "not found on host"),
    ({"network": "../x"}, "network", "invalid network"),
    ({"network": "none", "network_aliases": ["a"]}, "network_aliases", "no aliases"),
    ({"network_aliases": "db"}, "network_aliases", "list"),
    ({"ports": "8080:80"}, "ports", "must be a list"),
    ({"ports": ["80:70000"]}, "ports", "1-65535"),
    ({"ports": ["8000-8002:80-81"]}, "ports", "differ in length"),
    ({"ports": ["8080:80/sctp"]}, "ports", "tcp or udp"),
    ({"ports": ["[::1]:8080:80"]}, "ports", "IPv6"),
    ({"ports": ["8080:80", "8080:81"]}, "ports", "published twice"),
    ({"ports": [{"container_port": 80, "extra": 1}]}, "ports", "each port object"),
])
def test_bad_network_options_are_400s(owner, host, client_for, body, field, message):
    response = create_container(client_for(owner), body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"] and message in error["message"], error


def test_a_named_network_places_the_container_on_its_host(team, owner, host, broker,
                                                          client_for):
    elsewhere = make_host("second")
    make_network(team, elsewhere, "far")
    response = create_container(client_for(owner), {"network": "far"})
    assert response.status_code == 201, response.content
    assert response.json()["host"] == "second"


def test_reports_keep_addresses_and_ports_in_seq_order(team, host):
    container = make_container(team, host, state_seq=1)
    report = {"seq": 3, "state": "running", "pid": 10, "exit_code": None,
              "started_at": None, "finished_at": None, "error": "",
              "network_mode": "alpha.backend",
              "networks": {"alpha.backend": {"ip": "10.213.16.2", "prefixlen": 24,
                                             "gateway": "10.213.16.1", "mac": "02:00:00:00:00:01",
                                             "aliases": [], "ifname": "eth0"}},
              "ports": [{"container_port": 80, "protocol": "tcp", "host_ip": "",
                         "host_port": 32768}]}
    assert container_services.apply_report(container.id, report)
    stale = {**report, "seq": 2, "ports": []}
    container_services.apply_report(container.id, stale)
    row = ContainerNetwork.objects.get(pk=container.id)
    assert row.ports[0]["host_port"] == 32768 and row.networks["alpha.backend"]["ip"]


def test_inspect_lists_members_and_remove_refuses_while_attached(team, owner, host, fake_agent,
                                                                 client_for):
    network = make_network(team, host)
    container = make_container(team, host)
    ContainerNetwork.objects.create(container=container, seq=1, mode="alpha.backend", networks={
        "alpha.backend": {"ip": "10.213.16.5", "prefixlen": 24, "mac": "02:00:00:00:00:05",
                          "aliases": ["api"]}})
    client = client_for(owner)
    shown = client.get(f"/api/networks/{network.pk}/").json()
    assert shown["members"] == [{"container": container.id, "name": "web",
                                 "ip": "10.213.16.5", "prefixlen": 24,
                                 "mac": "02:00:00:00:00:05", "aliases": ["api"]}]
    refused = client.delete(f"/api/networks/{network.pk}/")
    assert refused.status_code == 409 and "web" in refused.json()["error"]["message"]
    ports = client.get(f"/api/networks/containers/{container.id}/").json()
    assert ports["network_mode"] == "alpha.backend"
    ContainerNetwork.objects.all().delete()
    fake_agent["agent.network_remove"] = {"removed": True}
    assert client.delete(f"/api/networks/{network.pk}/").status_code == 204
    assert not Network.objects.exists()


def test_connect_sends_the_spec_and_records_the_answer(team, owner, host, fake_agent, broker,
                                                       client_for):
    network = make_network(team, host)
    container = make_container(team, host)
    answer = {"network_mode": "bridge", "ports": [], "networks": {
        "bridge": {"ip": "10.213.0.2"}, "alpha.backend": {"ip": "10.213.16.9"}}}
    fake_agent["agent.network_connect"] = answer
    client = client_for(owner)
    response = client.post(f"/api/networks/{network.pk}/connect/",
                           {"container": "web", "aliases": ["cache"]}, format="json")
    assert response.status_code == 200, response.content
    [message] = queued_messages(broker, host.name)
    assert message["args"] == [container.id, {
        "name": "alpha.backend", "bridge": "berth-ab12cd", "subnet": "10.213.16.0/24",
        "gateway": "10.213.16.1", "aliases": ["cache"]}]
    container.refresh_from_db()
    assert [n["name"] for n in container.options["networks"]] == ["alpha.backend"]
    assert ContainerNetwork.objects.get(pk=container.id).networks == answer["networks"]
    missing = client.post(f"/api/networks/{network.pk}/connect/", {"container": "nope"},
                          format="json")
    assert missing.status_code == 404
    fake_agent["agent.network_disconnect"] = {**answer, "networks": {"bridge": {}}}
    gone = client.post(f"/api/networks/{network.pk}/disconnect/", {"container": container.id},
                       format="json")
    assert gone.status_code == 200
    container.refresh_from_db()
    assert container.options["networks"] == []


def test_a_pending_container_on_a_network_keeps_it(team, owner, host, client_for):
    network = make_network(team, host)
    response = create_container(client_for(owner), {"name": "early", "network": "backend"})
    assert response.status_code == 201, response.content
    refused = client_for(owner).delete(f"/api/networks/{network.pk}/")
    assert refused.status_code == 409 and "early" in refused.json()["error"]["message"]
