"""Image actions through the API: the messages that land on ``host.<name>`` (operations) and
the RPCs answered through the real result backend (tag, remove, inspect, prune), roles,
team scoping, agent refusals and error shapes."""

import pytest

from apps.containers.choices import State
from apps.containers.models import Container
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.images.models import Image
from apps.operations.models import Operation
from tests.fixtures import (
    BUSYBOX,
    agent_exception,
    image_report,
    make_host,
    queued_messages,
)

pytestmark = pytest.mark.django_db

APP = "127.0.0.1:5000/app:1"


def team_image(team, host, reference=APP, **extra) -> Image:
    return Image.objects.create(
        host=host, team=team, reference=reference, image_id="sha256:" + "a" * 64, **extra
    )


def pull(client, **body):
    return client.post("/api/images/pull/", body, format="json")


# ---- pull ---------------------------------------------------------------------------------


def test_pull_starts_an_operation_and_queues_the_task(
    owner, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    client = client_for(owner)
    client.post(
        "/api/registries/",
        {"name": "local", "url": "http://127.0.0.1:5000", "username": "u", "password": "p"},
        format="json",
    )
    client.post("/api/registries/", {"name": "other", "url": "https://o.example"}, format="json")
    with django_capture_on_commit_callbacks(execute=True):
        response = pull(client, reference="127.0.0.1:5000/app:1", host=host.name)
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["kind"], body["status"], body["target"]) == ("pull", "queued", APP)
    assert (body["team"], body["host"], body["user"]) == ("alpha", host.name, owner.username)
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.image_pull"
    # Only the credentials of the reference's registry travel to the agent.
    assert message["args"] == [
        body["id"],
        APP,
        {"127.0.0.1:5000": {"username": "u", "password": "p", "insecure": True, "mirrors": []}},
    ]
    assert Operation.objects.get(pk=body["id"]).team == team


def test_pull_normalizes_and_picks_an_online_host(
    owner, broker, client_for, django_capture_on_commit_callbacks
):
    make_host(online=False)
    online = make_host()
    with django_capture_on_commit_callbacks(execute=True):
        response = pull(client_for(owner), reference="alpine")
    assert response.status_code == 202, response.content
    assert response.json()["host"] == online.name
    [message] = queued_messages(broker, online.name)
    assert message["args"][1:] == ["docker.io/library/alpine:latest", {}]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({}, "reference", "This field is required."),
        ({"reference": "Not Valid"}, "reference", "invalid image name"),
        ({"reference": "app", "host": "nowhere"}, "host", "unknown host 'nowhere'"),
        ({"reference": "app", "team": "nope"}, "team", "unknown team 'nope'"),
    ],
)
def test_bad_pulls_are_400_with_a_reason(owner, host, client_for, body, field, message):
    response = pull(client_for(owner), **body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert message in " ".join(error["fields"][field])
    assert not Operation.objects.exists()


def test_pull_on_an_offline_or_without_any_host_is_400(owner, client_for):
    response = pull(client_for(owner), reference="app")
    assert response.status_code == 400
    assert "no host is online" in response.json()["error"]["message"]
    offline = make_host(online=False)
    response = pull(client_for(owner), reference="app", host=offline.name)
    assert response.json()["error"]["fields"]["host"] == [f"host {offline.name} is offline"]


def test_viewer_cannot_pull_and_anonymous_is_401(viewer, host, client_for):
    response = pull(client_for(viewer), reference="app")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert pull(client_for(None), reference="app").status_code == 401
    assert not Operation.objects.exists()


# ---- push and tag -------------------------------------------------------------------------


def test_push_queues_the_task_with_the_registry(
    operator, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    image = team_image(team, host)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator).post(f"/api/images/{image.pk}/push/")
    assert response.status_code == 202, response.content
    assert response.json()["kind"] == "push"
    [message] = queued_messages(broker, host.name)
    assert (message["task"], message["args"][1:]) == ("agent.image_push", [APP, {}])


def test_push_as_another_reference_tags_first(
    owner, team, host, broker, fake_agent, client_for, django_capture_on_commit_callbacks
):
    image = team_image(team, host)
    target = "127.0.0.1:5000/app:release"
    fake_agent["agent.image_tag"] = {"image": image_report(target)}
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(owner).post(
            f"/api/images/{image.pk}/push/", {"reference": target}, format="json"
        )
    assert response.status_code == 202, response.content
    sent = [(m["task"], m["args"]) for m in queued_messages(broker, host.name)]
    assert sent[0] == ("agent.image_tag", [APP, target])
    assert sent[1] == ("agent.image_push", [response.json()["id"], target, {}])
    assert Image.objects.get(reference=target).team == team


def test_push_by_digest_needs_a_tag(owner, team, host, client_for):
    image = team_image(team, host, reference=f"127.0.0.1:5000/app@sha256:{'b' * 64}")
    response = client_for(owner).post(f"/api/images/{image.pk}/push/")
    assert response.status_code == 400
    assert "names a digest" in response.json()["error"]["message"]


def test_tag_calls_the_agent_and_adds_a_team_row(owner, team, host, broker, fake_agent, client_for):
    image = team_image(team, host)
    target = "127.0.0.1:5000/app:2"
    fake_agent["agent.image_tag"] = {"image": image_report(target)}
    response = client_for(owner).post(
        f"/api/images/{image.pk}/tag/", {"reference": "127.0.0.1:5000/app:2"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["reference"], body["team"], body["host"]) == (target, "alpha", host.name)
    assert body["repo_digests"] == []
    [message] = queued_messages(broker, host.name)
    assert (message["task"], message["args"]) == ("agent.image_tag", [APP, target])


def test_tagging_a_system_image_gives_the_team_its_own_row(owner, host, fake_agent, client_for):
    busybox = host.images.get(reference=BUSYBOX)
    target = "127.0.0.1:5000/busybox:1"
    fake_agent["agent.image_tag"] = {"image": image_report(target)}
    response = client_for(owner).post(
        f"/api/images/{busybox.pk}/tag/", {"reference": target}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["team"] == "alpha"


def test_tag_may_not_take_another_teams_reference(owner, team, other_team, host, client_for):
    image = team_image(team, host)
    Image.objects.create(
        host=host,
        team=other_team,
        reference="127.0.0.1:5000/theirs:1",
        image_id="sha256:" + "c" * 64,
    )
    response = client_for(owner).post(
        f"/api/images/{image.pk}/tag/", {"reference": "127.0.0.1:5000/theirs:1"}, format="json"
    )
    assert response.status_code == 409
    assert "an image of another team" in response.json()["error"]["message"]


def test_viewer_cannot_push_or_tag_and_outsider_gets_404(viewer, outsider, team, host, client_for):
    image = team_image(team, host)
    for client, expected in ((client_for(viewer), 403), (client_for(outsider), 404)):
        for action in ("push", "tag"):
            response = client.post(
                f"/api/images/{image.pk}/{action}/", {"reference": "x.example/y:1"}, format="json"
            )
            assert response.status_code == expected, (action, response.content)
    assert not Operation.objects.exists()


# ---- remove -------------------------------------------------------------------------------


def test_remove_calls_the_agent_and_drops_the_row(
    owner, team, host, broker, fake_agent, client_for
):
    image = team_image(team, host)
    fake_agent["agent.image_remove"] = {"untagged": [APP], "deleted": ["sha256:" + "a" * 64]}
    response = client_for(owner).delete(f"/api/images/{image.pk}/?force=1")
    assert response.status_code == 200, response.content
    assert response.json() == {"untagged": [APP], "deleted": ["sha256:" + "a" * 64]}
    [message] = queued_messages(broker, host.name)
    assert (message["task"], message["args"]) == ("agent.image_remove", [APP, True])
    assert not Image.objects.filter(pk=image.pk).exists()


@pytest.mark.parametrize("name", ["ImageInUse", "Conflict"])
def test_agent_refusal_is_409_with_its_message(owner, team, host, fake_agent, client_for, name):
    image = team_image(team, host)
    fake_agent["agent.image_remove"] = agent_exception(name, "image is used by container abc")
    response = client_for(owner).delete(f"/api/images/{image.pk}/")
    assert response.status_code == 409, response.content
    assert response.json()["error"] == {
        "code": "conflict",
        "message": "image is used by container abc",
        "fields": {},
    }
    assert Image.objects.filter(pk=image.pk).exists()


def test_other_agent_errors_are_502(owner, team, host, fake_agent, client_for):
    image = team_image(team, host)
    fake_agent["agent.image_remove"] = agent_exception("StoreCorrupt", "bad blob")
    response = client_for(owner).delete(f"/api/images/{image.pk}/")
    assert response.status_code == 502
    assert response.json()["error"]["message"] == f"host {host.name}: StoreCorrupt: bad blob"


def test_remove_on_an_offline_host_is_503(owner, team, host, client_for):
    image = team_image(team, host)
    Host.objects.filter(pk=host.pk).update(status=HostStatus.OFFLINE)
    response = client_for(owner).delete(f"/api/images/{image.pk}/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "host_unavailable"


def test_removing_a_reference_another_team_holds_only_drops_our_row(
    owner, team, other_team, host, broker, client_for
):
    ours = team_image(team, host)
    theirs = team_image(other_team, host)
    response = client_for(owner).delete(f"/api/images/{ours.pk}/")
    assert response.status_code == 200
    assert response.json() == {"untagged": [APP], "deleted": []}
    assert queued_messages(broker, host.name) == []  # the host keeps it for them
    assert list(Image.objects.filter(reference=APP)) == [theirs]


def test_removing_a_shared_reference_in_use_needs_force(owner, team, other_team, host, client_for):
    ours = team_image(team, host)
    team_image(other_team, host)
    Container.objects.create(
        name="web", team=team, host=host, image=ours, image_reference=APP, state=State.RUNNING
    )
    response = client_for(owner).delete(f"/api/images/{ours.pk}/")
    assert response.status_code == 409
    assert client_for(owner).delete(f"/api/images/{ours.pk}/?force=1").status_code == 200


def test_remove_roles_and_scoping(viewer, outsider, operator, team, host, client_for):
    image = team_image(team, host)
    assert client_for(viewer).delete(f"/api/images/{image.pk}/").status_code == 403
    assert client_for(outsider).delete(f"/api/images/{image.pk}/").status_code == 404
    busybox = host.images.get(reference=BUSYBOX)  # shared: only site admins remove it
    assert client_for(operator).delete(f"/api/images/{busybox.pk}/").status_code == 403
    assert client_for(operator).delete(f"/api/images/{image.pk}/?force=maybe").status_code == 400


# ---- inspect, history, prune --------------------------------------------------------------


def test_inspect_returns_the_agents_answer(viewer, team, host, fake_agent, client_for):
    image = team_image(team, host)
    answer = {
        "image": image_report(APP),
        "manifest": {"schemaVersion": 2},
        "config": {"os": "linux"},
    }
    fake_agent["agent.image_inspect"] = answer
    response = client_for(viewer).get(f"/api/images/{image.pk}/inspect/")
    assert response.status_code == 200, response.content
    assert response.json() == answer


def test_history_is_the_stored_one(viewer, outsider, team, host, client_for):
    history = [{"created_by": "ADD file:x in /"}, {"created_by": "CMD sh", "empty_layer": True}]
    image = team_image(team, host, history=history)
    response = client_for(viewer).get(f"/api/images/{image.pk}/history/")
    assert response.json() == {"reference": APP, "history": history}
    assert client_for(outsider).get(f"/api/images/{image.pk}/history/").status_code == 404


def test_history_of_an_old_row_asks_the_agent(owner, team, host, fake_agent, client_for):
    image = team_image(team, host)
    fake_agent["agent.image_inspect"] = {
        "image": {},
        "manifest": {},
        "config": {"history": [{"a": 1}]},
    }
    assert client_for(owner).get(f"/api/images/{image.pk}/history/").json()["history"] == [{"a": 1}]


def test_prune_dangling_then_forgets_deleted_rows(
    operator, team, host, broker, fake_agent, client_for
):
    gone = team_image(team, host)
    fake_agent["agent.image_prune"] = {"deleted": [gone.image_id], "reclaimed": 4096}
    response = client_for(operator).post("/api/images/prune/", {"host": host.name}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"deleted": [gone.image_id], "reclaimed": 4096}
    [message] = queued_messages(broker, host.name)
    assert (message["task"], message["args"]) == ("agent.image_prune", [False])
    assert not Image.objects.filter(pk=gone.pk).exists()
    assert host.images.filter(reference=BUSYBOX).exists()


def test_prune_all_is_for_site_admins(operator, admin, host, fake_agent, client_for):
    fake_agent["agent.image_prune"] = {"deleted": [], "reclaimed": 0}
    body = {"host": host.name, "all": True}
    refused = client_for(operator).post("/api/images/prune/", body, format="json")
    assert refused.status_code == 403
    assert "only site admins" in refused.json()["error"]["message"]
    assert client_for(admin).post("/api/images/prune/", body, format="json").status_code == 200


def test_prune_input_and_roles(viewer, owner, host, client_for):
    assert client_for(viewer).post("/api/images/prune/", {"host": host.name}).status_code == 403
    missing = client_for(owner).post("/api/images/prune/", {}, format="json")
    assert missing.status_code == 400 and "host" in missing.json()["error"]["fields"]
    unknown = client_for(owner).post("/api/images/prune/", {"host": "nowhere"}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["fields"]["host"] == ["unknown host 'nowhere'"]


def test_schema_lists_the_new_endpoints(owner, client_for):
    paths = client_for(owner).get("/api/schema/?format=json").json()["paths"]
    assert {
        "/api/images/pull/",
        "/api/images/load/",
        "/api/images/import/",
        "/api/images/save/",
        "/api/images/prune/",
        "/api/images/{id}/push/",
        "/api/images/{id}/tag/",
        "/api/images/{id}/inspect/",
        "/api/images/{id}/history/",
        "/api/registries/",
        "/api/operations/",
        "/api/operations/{id}/download/",
        "/api/transfers/{token}/",
    } <= paths.keys()


def test_a_team_cannot_repoint_a_reference_others_run(operator, host, client_for):
    """Tags on a host are shared: pulling or importing over another team's or the
    system's reference would change what their containers run."""
    from apps.images.models import Image

    Image.objects.create(host=host, team=None, reference="docker.io/library/shared:1",
                         digest="sha256:" + "a" * 64, image_id="sha256:" + "b" * 64)
    response = client_for(operator).post(
        "/api/images/pull/", {"reference": "shared:1", "host": host.name},
        content_type="application/json")
    assert response.status_code == 409, response.content
    assert "shared system image" in response.json()["error"]["message"]
