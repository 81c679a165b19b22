"""The volumes REST API and container mounts on the control plane: what is stored, what
reaches the host's queue, and every refusal (400 with a reason, 403 by policy, 404, 409)."""

import pytest

from apps.containers.models import Container
from apps.images.models import Image
from apps.teams.models import TeamPolicy
from apps.volumes import services
from apps.volumes.models import Volume
from apps.volumes.tasks import removed
from tests.fixtures import BUSYBOX, agent_exception, make_container, make_host, queued_messages

pytestmark = pytest.mark.django_db


def volume_report(name, **extra):
    report = {"name": name, "driver": "local", "labels": {}, "created": "2026-11-28T01:00:00Z",
              "anonymous": False, "mountpoint": f"/var/lib/berth/volumes/{name}/_data",
              "scope": "local", "in_use_by": [], "size": 4096}
    report.update(extra)
    return report


def create_container(client, body):
    return client.post("/api/containers/", {"image": "busybox", **body}, format="json")


def run_spec(broker, host_name) -> dict:
    [message] = [m for m in queued_messages(broker, host_name)
                 if m["task"] == "agent.container_run"]
    return message["args"][1]


# ---- the volumes API ------------------------------------------------------------------------


def test_create_is_idempotent_and_inspect_updates_the_size(owner, host, fake_agent, broker,
                                                           client_for):
    client = client_for(owner)
    fake_agent["agent.volume_create"] = volume_report("alpha.data", labels={"tier": "db"})
    made = client.post("/api/volumes/", {"name": "data", "labels": {"tier": "db"}},
                       format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert (body["name"], body["team"], body["host"]) == ("data", "alpha", host.name)
    assert body["labels"] == {"tier": "db"} and body["driver"] == "local"
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.volume_create"
    assert message["args"] == ["alpha.data", {"tier": "db"}]
    again = client.post("/api/volumes/", {"name": "data"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    fake_agent["agent.volume_inspect"] = volume_report("alpha.data", size=123 * 4096)
    shown = client.get(f"/api/volumes/{body['id']}/").json()
    assert shown["size"] == 123 * 4096 and shown["in_use_by"] == []
    assert shown["mountpoint"].endswith("/alpha.data/_data")
    listed = client.get("/api/volumes/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["name"] for row in rows] == ["data"] and rows[0]["size"] == 123 * 4096


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"name": "x"}, "name", "invalid volume name"),
    ({"name": "../etc"}, "name", "invalid volume name"),
    ({"name": "ok", "driver": "nfs"}, "driver", "only"),
    ({"name": "ok", "labels": {"a": 1}}, "labels", "strings"),
    ({"name": "ok", "host": "nowhere"}, "host", "unknown host"),
])
def test_bad_create_requests_are_400s_with_a_reason(owner, host, client_for, body, field,
                                                    message):
    response = client_for(owner).post("/api/volumes/", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["fields"] == {field: [error["message"]]} and message in error["message"]


def test_list_with_size_asks_each_host_once(team, owner, host, broker, fake_agent, client_for):
    Volume.objects.create(team=team, host=host, name="data", engine_name="alpha.data")
    Volume.objects.create(team=team, host=host, name="logs", engine_name="alpha.logs")
    fake_agent["agent.volume_list"] = [volume_report("alpha.data", size=8192),
                                       volume_report("beta.secret", size=1)]
    listed = client_for(owner).get("/api/volumes/?size=1").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert {row["name"]: row["size"] for row in rows} == {"data": 8192, "logs": None}
    assert [m["task"] for m in queued_messages(broker, host.name)] == ["agent.volume_list"]


def test_viewers_read_and_other_teams_get_404(team, viewer, outsider, host, client_for):
    volume = Volume.objects.create(team=team, host=host, name="data", engine_name="alpha.data")
    made = client_for(viewer).post("/api/volumes/", {"name": "v2"}, format="json")
    assert made.status_code == 403
    seen = client_for(viewer).get("/api/volumes/").json()
    assert [row["id"] for row in (seen["results"] if isinstance(seen, dict) else seen)] == [
        volume.id
    ]
    assert client_for(viewer).delete(f"/api/volumes/{volume.id}/").status_code == 403
    assert client_for(outsider).get(f"/api/volumes/{volume.id}/").status_code == 404
    assert client_for(outsider).delete(f"/api/volumes/{volume.id}/").status_code == 404
    listed = client_for(outsider).get("/api/volumes/").json()
    assert (listed["results"] if isinstance(listed, dict) else listed) == []


def test_removal_is_refused_while_a_container_mounts_it(owner, team, host, broker, fake_agent,
                                                       client_for):
    volume = Volume.objects.create(team=team, host=host, name="data", engine_name="alpha.data")
    make_container(team, host, state="exited", options={"mounts": [
        {"type": "volume", "source": "data", "target": "/d", "read_only": False,
         "name": "alpha.data"}]})
    refused = client_for(owner).delete(f"/api/volumes/{volume.id}/?force=1")
    assert refused.status_code == 409 and "in use" in refused.json()["error"]["message"]
    assert queued_messages(broker, host.name) == []  # refused without asking the host
    Container.objects.all().delete()
    fake_agent["agent.volume_remove"] = agent_exception("Conflict", "volume is in use by c1")
    refused = client_for(owner).delete(f"/api/volumes/{volume.id}/")
    assert refused.status_code == 409 and "c1" in refused.json()["error"]["message"]
    fake_agent["agent.volume_remove"] = {"removed": ["alpha.data"], "reclaimed": 8192}
    done = client_for(owner).delete(f"/api/volumes/{volume.id}/")
    assert done.status_code == 200 and done.json() == {"removed": ["data"], "reclaimed": 8192}
    assert not Volume.objects.filter(pk=volume.pk).exists()


def test_a_volume_already_gone_from_its_host_is_just_forgotten(owner, team, host, fake_agent,
                                                              client_for):
    volume = Volume.objects.create(team=team, host=host, name="data", engine_name="alpha.data")
    fake_agent["agent.volume_remove"] = agent_exception("NotFound", "no such volume")
    assert client_for(owner).delete(f"/api/volumes/{volume.id}/").status_code == 200
    assert not Volume.objects.exists()


def test_prune_touches_only_the_callers_unused_volumes(owner, team, other_team, host,
                                                      fake_agent, client_for):
    keep_named = Volume.objects.create(team=team, host=host, name="named", engine_name="alpha.n")
    anon = Volume.objects.create(team=team, host=host, name="a" * 64, engine_name="a" * 64,
                                 anonymous=True)
    used = Volume.objects.create(team=team, host=host, name="b" * 64, engine_name="b" * 64,
                                 anonymous=True)
    other = Volume.objects.create(team=other_team, host=host, name="c" * 64,
                                  engine_name="c" * 64, anonymous=True)
    make_container(team, host, state="exited", options={"mounts": [
        {"type": "volume", "source": used.name, "target": "/d", "read_only": False,
         "name": used.engine_name, "anonymous": True}]})
    fake_agent["agent.volume_remove"] = {"removed": ["x"], "reclaimed": 100}
    result = client_for(owner).post("/api/volumes/prune/", {}, format="json").json()
    assert result == {"deleted": [anon.name], "reclaimed": 100}
    result = client_for(owner).post("/api/volumes/prune/", {"all": True, "labels": ["x"]},
                                    format="json").json()
    assert result["deleted"] == []
    result = client_for(owner).post("/api/volumes/prune/", {"all": True}, format="json").json()
    assert result["deleted"] == [keep_named.name]
    assert set(Volume.objects.values_list("pk", flat=True)) == {used.pk, other.pk}


def test_agent_report_of_removed_volumes_drops_the_rows(team, host):
    Volume.objects.create(team=team, host=host, name="a" * 64, engine_name="a" * 64)
    Volume.objects.create(team=team, host=host, name="kept", engine_name="alpha.kept")
    removed(host.name, ["a" * 64, "alpha.elsewhere"])
    assert list(Volume.objects.values_list("name", flat=True)) == ["kept"]


# ---- mounts of a new container ----------------------------------------------------------------


def test_short_and_long_mounts_reach_the_run_spec(owner, team, host, broker, client_for,
                                                  django_capture_on_commit_callbacks):
    TeamPolicy.objects.create(team=team, bind_mount_roots=["/srv/shared"])
    mounts = ["data:/var/lib/data", "/srv/shared/conf:/etc/app:ro", "/scratch-anon",
              {"type": "tmpfs", "target": "/run/x", "options": "size=1m"},
              {"type": "volume", "source": "cache", "destination": "/cache", "options": "nocopy"},
              "seeded:/seeded:ro,nocopy"]
    with django_capture_on_commit_callbacks(execute=True):
        response = create_container(client_for(owner), {"mounts": mounts})
    assert response.status_code == 201, response.content
    spec = run_spec(broker, host.name)
    by_target = {m["target"]: m for m in spec["mounts"]}
    assert by_target["/var/lib/data"] == {"type": "volume", "source": "alpha.data",
                                          "target": "/var/lib/data", "read_only": False}
    assert by_target["/etc/app"] == {"type": "bind", "source": "/srv/shared/conf",
                                     "target": "/etc/app", "read_only": True,
                                     "within": "/srv/shared"}
    anonymous = by_target["/scratch-anon"]
    assert anonymous["anonymous"] is True and len(anonymous["source"]) == 64
    assert by_target["/run/x"]["options"] == "size=1m"
    assert by_target["/cache"]["options"] == "nocopy"
    assert by_target["/seeded"]["options"] == "nocopy" and by_target["/seeded"]["read_only"]
    names = set(Volume.objects.filter(team=team).values_list("name", "anonymous"))
    assert names == {("data", False), ("cache", False), ("seeded", False),
                     (anonymous["source"], True)}
    shown = response.json()["options"]["mounts"]
    assert {m["target"] for m in shown} == set(by_target)


def test_image_declared_volumes_become_anonymous_volumes(owner, team, broker, client_for,
                                                         django_capture_on_commit_callbacks):
    host = make_host(images=())
    Image.objects.create(host=host, reference=BUSYBOX, digest="sha256:" + "0" * 64,
                         config={"Volumes": {"/data": {}, "/logs": {}}})
    with django_capture_on_commit_callbacks(execute=True):
        response = create_container(client_for(owner), {"mounts": ["named:/logs"]})
    assert response.status_code == 201, response.content
    mounts = {m["target"]: m for m in run_spec(broker, host.name)["mounts"]}
    assert mounts["/logs"]["source"] == "alpha.named" and "anonymous" not in mounts["/logs"]
    assert mounts["/data"]["anonymous"] is True
    assert Volume.objects.get(engine_name=mounts["/data"]["source"]).anonymous


def test_bind_mounts_need_an_allowed_root_unless_site_admin(
    operator, admin, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    refused = create_container(client_for(operator), {"mounts": ["/etc:/host-etc"]})
    assert refused.status_code == 403, refused.content
    error = refused.json()["error"]
    assert error["code"] == "permission_denied" and "may not use bind mounts" in error["message"]
    TeamPolicy.objects.create(team=team, bind_mount_roots=["/srv/shared"])
    for source in ("/etc", "/srv/shared/../../etc", "/srv/sharedother"):
        refused = create_container(client_for(operator), {"mounts": [f"{source}:/x"]})
        assert refused.status_code == 403, source
        assert "only bind host paths under /srv/shared" in refused.json()["error"]["message"]
    with django_capture_on_commit_callbacks(execute=True):
        allowed = create_container(client_for(operator), {"mounts": ["/srv/shared/app:/x:ro"]})
    assert allowed.status_code == 201, allowed.content
    with django_capture_on_commit_callbacks(execute=True):
        by_admin = create_container(client_for(admin), {"team": "alpha", "mounts": ["/etc:/x"]})
    assert by_admin.status_code == 201, by_admin.content
    assert Container.objects.count() == 2
    specs = [m["args"][1]["mounts"] for m in queued_messages(broker, host.name)]
    assert [[m.get("within") for m in mounts] for mounts in specs] == [["/srv/shared"], [None]]


@pytest.mark.parametrize(("mounts", "message"), [
    ("data:/x", "must be a list"),
    (["data:/"], "other than /"),
    (["data:relative"], "absolute path"),
    (["data:/a/../b"], "without '..'"),
    (["data:/proc/sys"], "belongs to the kernel"),
    (["data:/x:rx"], "ro or rw"),
    (["data:/x:ro,rw"], "ro or rw"),
    (["/srv/a:/x:nocopy"], "unknown bind mount option 'nocopy'"),
    (["a:b:c:d"], "invalid mount"),
    (["x:/x"], "invalid volume name"),
    (["data:/x", "other:/x/"], "two mounts on /x"),
    ([{"type": "nfs", "target": "/x"}], "'type' must be one of"),
    ([{"type": "tmpfs", "source": "t", "target": "/x"}], "takes no 'source'"),
    ([{"type": "bind", "source": "rel", "target": "/x"}], "absolute host path"),
    ([{"type": "volume", "source": "data", "target": "/x", "read_only": "yes"}], "true or false"),
    ([{"type": "volume", "source": "data", "target": "/x", "options": "exec"}], "option 'exec'"),
])
def test_invalid_mounts_are_400s_naming_the_field(owner, host, broker, client_for, mounts,
                                                  message):
    response = create_container(client_for(owner), {"mounts": mounts})
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert "mounts" in error["fields"] and message in error["message"]
    assert queued_messages(broker, host.name) == [] and not Volume.objects.exists()


def test_remove_with_volumes_asks_for_the_anonymous_ones(owner, team, host, broker, client_for,
                                                         django_capture_on_commit_callbacks):
    container = make_container(team, host, state="exited")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).delete(f"/api/containers/{container.id}/?volumes=1")
    assert response.status_code == 202
    [message] = queued_messages(broker, host.name)
    assert message["args"] == [container.id, False, True]


def test_engine_names_keep_teams_apart(team, other_team):
    assert services.engine_name(team, "data") != services.engine_name(other_team, "data")
