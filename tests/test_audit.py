"""The audit log: services record who did what, from where; append-only; filters; export."""

import csv
import io
import json

import pytest
from django.utils import timezone

from apps.audit import record
from apps.audit.models import AppendOnly, AuditEvent
from tests.fixtures import make_container

pytestmark = pytest.mark.django_db


def post(client, body):
    return client.post("/api/containers/", body, format="json", REMOTE_ADDR="192.0.2.7")


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_api_actions_are_recorded_with_actor_and_address(owner, host, client_for):
    created = post(client_for(owner), {"image": "busybox", "name": "web"})
    assert created.status_code == 201
    event = AuditEvent.objects.get(action="container.create")
    assert event.actor_name == "olive" and event.actor == owner
    assert event.ip == "192.0.2.7"
    assert event.object_type == "container" and event.object_id == created.json()["id"]
    assert event.team_slug == "alpha"
    assert event.details == {"image": "docker.io/library/busybox:latest", "host": host.name}


def test_token_requests_say_so(owner, host):
    from rest_framework.test import APIClient

    from apps.accounts.services import create_token

    _, key = create_token(owner)
    client = APIClient(HTTP_AUTHORIZATION=f"Token {key}")
    container = make_container(owner.teams.get(), host)
    assert (
        client.post(f"/api/containers/{container.id}/stop/", {}, format="json").status_code == 202
    )
    event = AuditEvent.objects.get(action="container.stop")
    assert event.via == "token" and event.actor_name == "olive"


def test_refused_changes_leave_no_event(viewer, host, client_for):
    assert post(client_for(viewer), {"image": "busybox"}).status_code == 403
    assert not AuditEvent.objects.exists()


def test_rows_cannot_be_changed_or_deleted(team):
    event = record("test.thing", team)
    event.action = "changed"
    with pytest.raises(AppendOnly):
        event.save()
    with pytest.raises(AppendOnly):
        event.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(action="changed")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "test.thing"


def test_the_api_has_no_write_methods(admin, team, client_for):
    event = record("test.thing", team)
    client = client_for(admin)
    assert client.post("/api/audit/", {}, format="json").status_code == 405
    assert client.delete(f"/api/audit/{event.pk}/").status_code == 405
    assert client.patch(f"/api/audit/{event.pk}/", {}, format="json").status_code == 405


def test_who_sees_which_events(team, other_team, owner, operator, admin, outsider, client_for):
    record("test.alpha", team)
    record("test.beta", other_team)
    record("test.site", object_type="host", object_id="1")

    def actions(user):
        response = client_for(user).get("/api/audit/")
        assert response.status_code == 200
        return sorted(row["action"] for row in response.json()["results"])

    assert actions(admin) == ["test.alpha", "test.beta", "test.site"]
    assert actions(owner) == ["test.alpha"]
    assert actions(outsider) == ["test.beta"]
    assert actions(operator) == []  # only owners read their team's log
    assert client_for().get("/api/audit/").status_code == 401


def test_filters_and_ordering(admin, owner, team, client_for):
    record("container.create", team, user=owner)
    record("container.remove", team, user=owner)
    record("container.create", team, user=admin)
    client = client_for(admin)

    def ids(query):
        response = client.get(f"/api/audit/?{query}")
        assert response.status_code == 200, response.content
        return [(row["action"], row["actor"]) for row in response.json()["results"]]

    assert ids("action=container.create") == [
        ("container.create", "root"),
        ("container.create", "olive"),
    ]
    assert ids("actor=olive&ordering=created_at") == [
        ("container.create", "olive"),
        ("container.remove", "olive"),
    ]
    assert ids("team=beta") == []
    future = (timezone.now() + timezone.timedelta(hours=1)).isoformat()
    assert ids(f"since={future.replace('+', '%2B')}") == []
    assert len(ids(f"until={future.replace('+', '%2B')}")) == 3
    bad = client.get("/api/audit/?since=yesterday")
    assert bad.status_code == 400 and "since" in bad.json()["error"]["fields"]


def test_export_csv_and_json(admin, team, client_for):
    record("container.create", team, details={"image": "busybox"})
    record("team.member_set", team, details={"username": "=cmd|' /C calc'!A0"})
    client = client_for(admin)

    response = client.get("/api/audit/export/?as=csv&ordering=created_at")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [row["action"] for row in rows] == ["container.create", "team.member_set"]
    assert json.loads(rows[0]["details"]) == {"image": "busybox"}
    assert rows[0]["team_slug"] == "alpha"

    response = client.get("/api/audit/export/?as=json&action=team.member_set")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    exported = json.loads(body(response))
    assert len(exported) == 1 and exported[0]["details"]["username"].startswith("=cmd")


def test_csv_cells_cannot_become_formulas(admin, team, client_for):
    record("=HYPERLINK(1)", team)
    response = client_for(admin).get("/api/audit/export/?as=csv")
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert rows[0]["action"] == "'=HYPERLINK(1)"


def test_export_of_nothing_is_valid(admin, client_for):
    assert json.loads(body(client_for(admin).get("/api/audit/export/"))) == []
    assert client_for(admin).get("/api/audit/export/?as=xml").status_code == 400


def test_operations_are_recorded(owner, host, client_for):
    pulled = client_for(owner).post("/api/images/pull/", {"reference": "alpine"}, format="json")
    assert pulled.status_code == 202, pulled.content
    event = AuditEvent.objects.get(action="operation.pull")
    assert event.actor_name == "olive" and event.object_id == pulled.json()["id"]
    assert event.details == {
        "kind": "pull",
        "target": "docker.io/library/alpine:latest",
        "host": host.name,
    }


def test_team_and_host_changes_are_recorded(admin, owner, team, host, client_for):
    client_for(owner).post(
        "/api/teams/alpha/members/", {"username": "root", "role": "viewer"}, format="json"
    )
    client_for(admin).patch("/api/teams/alpha/policy/", {"max_containers": 4}, format="json")
    client_for(admin).post(f"/api/hosts/{host.name}/cordon/")
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "actor_name"))
    assert actions == [
        ("team.member_set", "olive"),
        ("team.policy_update", "root"),
        ("host.cordon", "root"),
    ]
