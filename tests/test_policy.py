"""Team policy: allowed hosts, quotas, bind mounts and privileged options, enforced in
services (so every client gets the same refusal) and managed by site admins over the API."""

import pytest

from apps.teams import policy
from apps.teams.models import TeamPolicy
from berth.errors import Forbidden, InvalidInput
from tests.fixtures import make_container, make_host

pytestmark = pytest.mark.django_db

MiB = 2**20


def post(client, body):
    return client.post("/api/containers/", body, format="json")


def set_policy(team, **fields):
    hosts = fields.pop("allowed_hosts", None)
    row, _ = TeamPolicy.objects.update_or_create(team=team, defaults=fields)
    if hosts is not None:
        row.allowed_hosts.set(hosts)
    return row


def error(response) -> dict:
    return response.json()["error"]


# ---- bind mounts --------------------------------------------------------------------------


def test_bind_mounts_are_refused_without_roots(team, owner):
    with pytest.raises(Forbidden, match="may not use bind mounts"):
        policy.check_bind_mount(team, owner, "/srv/data")


def test_bind_mounts_only_under_the_team_roots(team, owner):
    set_policy(team, bind_mount_roots=["/srv/alpha", "/data/shared"])
    policy.check_bind_mount(team, owner, "/srv/alpha")
    policy.check_bind_mount(team, owner, "/srv/alpha/logs/app")
    policy.check_bind_mount(team, owner, "/data/shared/x/")
    for outside in ("/srv/alphabet", "/srv", "/etc/shadow", "/srv/alpha/../../etc", "//etc"):
        with pytest.raises(Forbidden, match="only bind host paths under") as refused:
            policy.check_bind_mount(team, owner, outside)
        assert refused.value.field == "source"


def test_bind_mount_paths_must_be_absolute(team, owner):
    set_policy(team, bind_mount_roots=["/"])
    for bad in ("relative/path", "", "/a\0b", None):
        with pytest.raises(InvalidInput):
            policy.check_bind_mount(team, owner, bad)
    policy.check_bind_mount(team, owner, "/anything")  # "/" as a root allows every path


def test_site_admins_may_bind_anything(team, admin):
    policy.check_bind_mount(team, admin, "/etc")


# ---- privileged options -------------------------------------------------------------------


def test_privileged_options_need_the_policy(team, owner, host, client_for):
    refused = post(client_for(owner), {"image": "busybox", "seccomp": "unconfined"})
    assert refused.status_code == 403
    assert "privileged" in error(refused)["message"]
    with pytest.raises(Forbidden, match="privileged"):
        policy.check_privileged(team, owner, "cap_add")
    set_policy(team, allow_privileged=True)
    allowed = post(client_for(owner), {"image": "busybox", "seccomp": "unconfined"})
    assert allowed.status_code == 201, allowed.content
    policy.check_privileged(team, owner, "cap_add")


# ---- quotas -------------------------------------------------------------------------------


def test_container_quota(team, owner, admin, host, client_for):
    set_policy(team, max_containers=2)
    make_container(team, host, name="one", state="exited")  # stopped containers count too
    assert post(client_for(owner), {"image": "busybox"}).status_code == 201
    refused = post(client_for(owner), {"image": "busybox"})
    assert refused.status_code == 403
    assert error(refused)["code"] == "quota_exceeded"
    assert "has 2 of its 2 containers" in error(refused)["message"]
    # Site admins are not bound by team quotas.
    assert post(client_for(admin), {"image": "busybox", "team": "alpha"}).status_code == 201


def test_memory_quota_needs_limits_and_adds_them_up(team, owner, host, client_for):
    set_policy(team, max_memory_bytes=100 * MiB)
    unlimited = post(client_for(owner), {"image": "busybox"})
    assert unlimited.status_code == 403
    assert error(unlimited)["fields"]["memory"] == [
        "team alpha has a memory quota, so every container needs 'memory' set"
    ]
    assert post(client_for(owner), {"image": "busybox", "memory": "60m"}).status_code == 201
    over = post(client_for(owner), {"image": "busybox", "memory": "50m"})
    assert over.status_code == 403
    assert "110 MiB of memory, over its quota of 100 MiB (60 MiB in use)" in error(over)["message"]
    assert post(client_for(owner), {"image": "busybox", "memory": "40m"}).status_code == 201


def test_cpu_quota(team, owner, host, client_for):
    set_policy(team, max_cpus=1.5)
    assert post(client_for(owner), {"image": "busybox", "cpus": 1}).status_code == 201
    over = post(client_for(owner), {"image": "busybox", "cpus": 1})
    assert over.status_code == 403 and error(over)["fields"].keys() == {"cpus"}
    assert post(client_for(owner), {"image": "busybox", "cpus": 0.5}).status_code == 201


def test_update_cannot_go_over_the_quota(team, owner, host, client_for):
    from apps.containers import services

    set_policy(team, max_memory_bytes=100 * MiB)
    make_container(team, host, name="big", options={"memory": 80 * MiB})
    small = make_container(team, host, name="small", options={"memory": 10 * MiB})
    with pytest.raises(Forbidden, match="over its quota"):
        services.update_container(small, {"memory": "30m"})


def test_usage_counts_every_container_of_the_team(team, other_team, host):
    make_container(team, host, name="a", options={"memory": 10 * MiB, "cpus": 0.5})
    make_container(team, host, name="b", state="exited", options={"cpus": 1})
    make_container(other_team, host, name="c", options={"memory": 99 * MiB})
    assert policy.usage_of(team) == policy.Usage(containers=2, memory_bytes=10 * MiB, cpus=1.5)


# ---- hosts --------------------------------------------------------------------------------


def test_allowed_hosts_limit_named_and_scheduled_placement(team, owner, client_for):
    allowed, other = make_host("test-allowed"), make_host("test-other")
    set_policy(team, restrict_hosts=True, allowed_hosts=[allowed])
    refused = post(client_for(owner), {"image": "busybox", "host": other.name})
    assert refused.status_code == 403
    assert error(refused)["fields"]["host"] == ["team alpha may not use host test-other"]
    for _ in range(3):
        placed = post(client_for(owner), {"image": "busybox"})
        assert placed.status_code == 201 and placed.json()["host"] == allowed.name


def test_restricted_to_no_hosts_explains_why(team, owner, host, client_for):
    set_policy(team, restrict_hosts=True)
    refused = post(client_for(owner), {"image": "busybox"})
    assert refused.status_code == 400
    assert f"{host.name} is not allowed by the team's policy" in error(refused)["message"]


# ---- the policy API -----------------------------------------------------------------------


def test_members_read_the_policy_with_usage(team, viewer, host, client_for):
    set_policy(team, max_containers=5)
    make_container(team, host)
    response = client_for(viewer).get("/api/teams/alpha/policy/")
    assert response.status_code == 200
    body = response.json()
    assert body["max_containers"] == 5 and body["max_cpus"] is None
    assert body["usage"] == {"containers": 1, "memory_bytes": 0, "cpus": 0.0}


def test_only_site_admins_change_policy(team, owner, admin, outsider, host, client_for):
    change = {
        "max_containers": 3,
        "bind_mount_roots": ["/srv/a/"],
        "allowed_hosts": [host.name],
        "restrict_hosts": True,
    }
    refused = client_for(owner).patch("/api/teams/alpha/policy/", change, format="json")
    assert refused.status_code == 403
    assert client_for(outsider).get("/api/teams/alpha/policy/").status_code == 404
    response = client_for(admin).patch("/api/teams/alpha/policy/", change, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["bind_mount_roots"] == ["/srv/a"]
    assert body["allowed_hosts"] == [host.name] and body["restrict_hosts"] is True
    assert TeamPolicy.objects.get(team=team).max_containers == 3


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"max_containers": -1}, "max_containers"),
        ({"max_containers": 1.5}, "max_containers"),
        ({"bind_mount_roots": ["relative"]}, "bind_mount_roots"),
        ({"bind_mount_roots": "/srv"}, "bind_mount_roots"),
        ({"allowed_hosts": ["no-such-host"]}, "allowed_hosts"),
        ({"allow_privileged": "yes"}, "allow_privileged"),
    ],
)
def test_bad_policy_is_400(team, admin, client_for, change, field):
    response = client_for(admin).patch("/api/teams/alpha/policy/", change, format="json")
    assert response.status_code == 400, response.content
    assert field in error(response)["fields"]


def test_pulls_go_only_to_allowed_hosts(team, owner, client_for):
    allowed, other = make_host("test-pull-allowed"), make_host("test-pull-other")
    set_policy(team, restrict_hosts=True, allowed_hosts=[allowed])
    client = client_for(owner)
    refused = client.post(
        "/api/images/pull/", {"reference": "alpine", "host": other.name}, format="json"
    )
    assert refused.status_code == 403
    assert error(refused)["fields"]["host"] == ["team alpha may not use host test-pull-other"]
    for _ in range(2):
        pulled = client.post("/api/images/pull/", {"reference": "alpine"}, format="json")
        assert pulled.status_code == 202, pulled.content
        assert pulled.json()["host"] == allowed.name
