"""Create options: validation (400 naming the field), what is stored, the agent spec
that lands on ``host.<name>``, placement by CPUs, and label filters."""

import pytest

from apps.containers import options
from apps.containers.models import Container
from tests.fixtures import BUSYBOX, make_container, make_host, queued_messages

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/containers/", body, format="json")


def run_spec_sent(broker, host_name) -> dict:
    [message] = queued_messages(broker, host_name)
    assert message["task"] == "agent.container_run"
    return message["args"][1]


FULL = {
    "image": "busybox",
    "name": "web",
    "command": ["-c", "echo hi"],
    "entrypoint": "/bin/sh",
    "env": {"MODE": "prod"},
    "working_dir": "/srv",
    "user": "1000:1000",
    "hostname": "web-1.internal",
    "labels": {"tier": "web", "com.example/owner": "ops"},
    "read_only": True,
    "tmpfs": {"/run": "size=64m", "/tmp": ""},
    "extra_hosts": ["db:10.0.0.5", "v6:[::1]"],
    "sysctls": {"net.ipv4.ip_forward": 1, "kernel.shmmax": "65536"},
    "memory": "512m",
    "memory_swap": "1g",
    "cpus": 1.5,
    "cpu_shares": 512,
    "cpuset_cpus": "0-1",
    "pids_limit": 64,
    "restart_policy": "on-failure:3",
    "stop_signal": "INT",
    "stop_timeout": 30,
    "log_max_size": "10m",
    "log_max_files": 3,
    "no_new_privileges": True,
    "tty": True,
    "open_stdin": True,
    "start": False,
}


def test_every_option_lands_in_the_run_spec(
    owner, host, broker, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(owner), FULL)
    assert response.status_code == 201, response.content
    body = response.json()
    spec = run_spec_sent(broker, host.name)
    assert spec == {
        "image": BUSYBOX,
        "args": ["-c", "echo hi"],
        "env": ["MODE=prod"],
        "cwd": "/srv",
        "hostname": "web-1.internal",
        "name": "web",
        "entrypoint": ["/bin/sh"],
        "user": "1000:1000",
        "limits": {
            "memory": 512 * 2**20,
            "memory_swap": 2**30,
            "cpu_quota": 150_000,
            "cpu_period": 100_000,
            "cpu_shares": 512,
            "cpuset_cpus": "0-1",
            "pids": 64,
        },
        "restart": "on-failure:3",
        "log": {"max_size": 10 * 2**20, "max_files": 3},
        "stop_signal": "SIGINT",
        "read_only": True,
        "no_new_privileges": True,
        "tty": True,
        "open_stdin": True,
        "tmpfs": {"/run": "size=64m", "/tmp": ""},
        "sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"},
        "extra_hosts": ["db:10.0.0.5", "v6:::1"],
        "start": False,
        "network_mode": "bridge",
    }
    assert body["labels"] == {"tier": "web", "com.example/owner": "ops"}
    assert body["restart_policy"] == "on-failure:3"
    assert body["auto_remove"] is False
    assert body["options"]["memory"] == 512 * 2**20
    assert body["options"]["cpus"] == 1.5
    assert body["options"]["seccomp"] == "default"
    assert body["options"]["start"] is False
    assert (body["oom_killed"], body["restart_count"]) == (False, 0)
    row = Container.objects.get(pk=body["id"])
    assert row.options["stop_timeout"] == 30 and row.stop_timeout == 30
    assert row.labels["tier"] == "web"


def test_memory_alone_leaves_swap_to_the_engine(
    owner, host, broker, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(owner), {"image": "busybox", "memory": 64 * 2**20})
    assert response.status_code == 201, response.content
    spec = run_spec_sent(broker, host.name)
    assert spec["limits"] == {"memory": 64 * 2**20}
    assert "restart" not in spec and "start" not in spec and "log" not in spec


def test_an_empty_entrypoint_clears_the_images_and_needs_a_command(
    owner, host, broker, client_for, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client_for(owner), {"image": "busybox", "entrypoint": [],
                                            "command": ["echo", "hi"]})
    assert response.status_code == 201, response.content
    spec = run_spec_sent(broker, host.name)
    assert spec["entrypoint"] == [] and spec["args"] == ["echo", "hi"]
    response = post(client_for(owner), {"image": "busybox", "entrypoint": ""})
    assert response.status_code == 400
    assert "empty entrypoint" in " ".join(response.json()["error"]["fields"]["command"])


def test_unlimited_swap_and_defaults_shown(owner, host, broker, client_for):
    response = post(client_for(owner), {"image": "busybox", "memory": "1g", "memory_swap": -1})
    assert response.status_code == 201, response.content
    shown = response.json()["options"]
    assert shown["memory_swap"] == -1
    assert shown["entrypoint"] is None and shown["tmpfs"] == {} and shown["start"] is True
    assert set(shown) == set(options.DEFAULTS)


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"memory": "lots"}, "memory", 'size like "512m"'),
        ({"memory": 1000}, "memory", "at least 6m"),
        ({"memory": True}, "memory", "number of bytes"),
        ({"memory_swap": "1g"}, "memory_swap", "needs 'memory'"),
        ({"memory": "1g", "memory_swap": "512m"}, "memory_swap", "at least 'memory'"),
        ({"cpus": 0}, "cpus", "from 0.01"),
        ({"cpus": "many"}, "cpus", "number of CPUs"),
        ({"cpus": True}, "cpus", "number of CPUs"),
        ({"cpus": 3}, "cpus", "no online host with docker.io/library/busybox:latest has 3"),
        ({"cpu_shares": 1}, "cpu_shares", "from 2 to 262144"),
        ({"cpuset_cpus": "a"}, "cpuset_cpus", "list CPUs"),
        ({"cpuset_cpus": "2-1"}, "cpuset_cpus", "runs backwards"),
        ({"cpuset_cpus": "1,3"}, "cpuset_cpus", "does not have"),
        ({"pids_limit": 0}, "pids_limit", "positive"),
        ({"pids_limit": "x"}, "pids_limit", "whole number"),
        ({"restart_policy": "sometimes"}, "restart_policy", "invalid restart policy"),
        ({"restart_policy": "always:3"}, "restart_policy", "invalid restart policy"),
        ({"stop_signal": "NOPE"}, "stop_signal", "unknown stop signal"),
        ({"stop_timeout": -1}, "stop_timeout", "from 0 to 3600"),
        ({"log_max_size": 10}, "log_max_size", "at least 1k"),
        ({"log_max_files": 3}, "log_max_files", "needs 'log_max_size'"),
        ({"log_max_size": "1m", "log_max_files": 0}, "log_max_files", "from 1 to 100"),
        ({"labels": {"a": 1}}, "labels", "string value"),
        ({"labels": {"a=b": "x"}}, "labels", "no '='"),
        ({"labels": ["a"]}, "labels", "must be an object"),
        ({"read_only": "yes"}, "read_only", "true or false"),
        ({"no_new_privileges": 1}, "no_new_privileges", "true or false"),
        ({"tty": "yes"}, "tty", "true or false"),
        ({"auto_remove": "yes"}, "auto_remove", "true or false"),
        ({"start": None, "read_only": 0}, "read_only", "true or false"),
        ({"tmpfs": {"relative": ""}}, "tmpfs", "absolute path"),
        ({"tmpfs": {"/": ""}}, "tmpfs", "absolute path other than /"),
        ({"tmpfs": {"/run": 5}}, "tmpfs", "must be a string"),
        ({"extra_hosts": ["db"]}, "extra_hosts", "name:ip"),
        ({"extra_hosts": ["db:999.1.1.1"]}, "extra_hosts", "name:ip"),
        ({"extra_hosts": "db:10.0.0.1"}, "extra_hosts", "must be a list"),
        ({"sysctls": {"kernel.hostname": "x"}}, "sysctls", "not allowed"),
        ({"sysctls": {"net.core.somaxconn": None}}, "sysctls", "string or number"),
        ({"user": "a b"}, "user", "name:group"),
        ({"hostname": "-bad"}, "hostname", "invalid hostname"),
        ({"hostname": "a" * 64}, "hostname", "at most 63"),
        ({"working_dir": "srv"}, "working_dir", "absolute path"),
        ({"entrypoint": [1]}, "entrypoint", "list of strings"),
        ({"entrypoint": "sh 'unclosed"}, "entrypoint", "cannot split"),
        ({"seccomp": "off"}, "seccomp", '"default" or "unconfined"'),
        ({"auto_remove": True, "restart_policy": "always"}, "auto_remove", "cannot be combined"),
        ({"env": {"A": 1}}, "env", "map names to strings"),
        ({"memroy": "1g"}, "memroy", "unknown field"),
    ],
)
def test_invalid_option_is_400_naming_the_field(owner, host, client_for, extra, field, message):
    response = post(client_for(owner), {"image": "busybox", **extra})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert field in error["fields"], error
    assert message in " ".join(error["fields"][field])
    assert not Container.objects.exists()


def test_seccomp_unconfined_is_for_site_admins(
    owner, admin, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    refused = post(client_for(owner), {"image": "busybox", "seccomp": "unconfined"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert "seccomp" in refused.json()["error"]["fields"]
    with django_capture_on_commit_callbacks(execute=True):
        allowed = post(
            client_for(admin), {"image": "busybox", "seccomp": "unconfined", "team": "alpha"}
        )
    assert allowed.status_code == 201, allowed.content
    assert run_spec_sent(broker, host.name)["seccomp"] == "unconfined"


def test_default_seccomp_is_fine_for_anyone_who_may_create(owner, host, client_for):
    assert post(client_for(owner), {"image": "busybox", "seccomp": "default"}).status_code == 201


def test_placement_picks_a_host_with_enough_cpus(owner, host, client_for):
    from apps.hosts.models import Host

    big = make_host()
    Host.objects.filter(pk=big.pk).update(cpus=8)
    response = post(client_for(owner), {"image": "busybox", "cpus": 4})
    assert response.status_code == 201, response.content
    assert response.json()["host"] == big.name
    response = post(client_for(owner), {"image": "busybox", "cpus": 16})
    assert response.status_code == 400
    assert "no online host with" in response.json()["error"]["fields"]["cpus"][0]


def test_named_host_with_too_few_cpus_is_400(owner, host, client_for):
    response = post(client_for(owner), {"image": "busybox", "cpus": 2.5, "host": host.name})
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["cpus"] == [
        f"'cpus' is 2.5 but host {host.name} has 2 CPUs"
    ]


def test_list_filters_by_label(owner, team, host, client_for):
    make_container(team, host, name="a", labels={"tier": "web", "x": "1"})
    make_container(team, host, name="b", labels={"tier": "db"})
    make_container(team, host, name="c")
    client = client_for(owner)

    def names(query):
        response = client.get(f"/api/containers/?{query}")
        assert response.status_code == 200, response.content
        return sorted(row["name"] for row in response.json()["results"])

    assert names("label=tier") == ["a", "b"]
    assert names("label=tier=web") == ["a"]
    assert names("label=tier=db&label=x") == []
    assert names("label=tier&label=x=1") == ["a"]
    assert client.get("/api/containers/?label==web").status_code == 400


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (1024, 1024),
        ("512", 512),
        ("512m", 512 * 2**20),
        ("1g", 2**30),
        ("1.5G", 3 * 2**29),
        ("64MiB", 64 * 2**20),
        ("2 kb", 2048),
    ],
)
def test_sizes(text, expected):
    assert options.parse_bytes(text, "memory") == expected


def test_stop_timeout_is_the_default_of_stop_and_restart(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    container = make_container(team, host, options={"stop_timeout": 42})
    client = client_for(owner)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/api/containers/{container.id}/stop/").status_code == 202
        assert client.post(f"/api/containers/{container.id}/restart/").status_code == 202
        explicit = client.post(
            f"/api/containers/{container.id}/stop/", {"timeout": 3}, format="json"
        )
        assert explicit.status_code == 202
    sent = [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]
    assert sent == [
        ("agent.container_stop", [container.id, 42]),
        ("agent.container_restart", [container.id, 42]),
        ("agent.container_stop", [container.id, 3]),
    ]
