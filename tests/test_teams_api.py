"""Team management over the API: members and roles (owners, site admins), a team always
keeps an owner; host list filters."""

import pytest

from apps.teams.models import Membership

pytestmark = pytest.mark.django_db


def members(client, slug="alpha") -> dict:
    return {
        row["username"]: row["role"] for row in client.get(f"/api/teams/{slug}/members/").json()
    }


def test_owner_adds_changes_and_removes_members(owner, viewer, outsider, client_for):
    client = client_for(owner)
    added = client.post(
        "/api/teams/alpha/members/", {"username": "otto", "role": "operator"}, format="json"
    )
    assert added.status_code == 200 and added.json() == {"username": "otto", "role": "operator"}
    client.post("/api/teams/alpha/members/", {"username": "vera", "role": "owner"}, format="json")
    assert members(client) == {"olive": "owner", "otto": "operator", "vera": "owner"}
    assert client.delete("/api/teams/alpha/members/otto/").status_code == 204
    assert "otto" not in members(client)
    assert client.delete("/api/teams/alpha/members/otto/").status_code == 404


def test_a_team_keeps_an_owner(owner, client_for):
    client = client_for(owner)
    demote = client.post(
        "/api/teams/alpha/members/", {"username": "olive", "role": "viewer"}, format="json"
    )
    assert demote.status_code == 409 and "at least one owner" in demote.json()["error"]["message"]
    assert client.delete("/api/teams/alpha/members/olive/").status_code == 409
    assert Membership.objects.get(user=owner).role == "owner"


def test_bad_member_requests_are_400(owner, client_for):
    client = client_for(owner)
    unknown = client.post(
        "/api/teams/alpha/members/", {"username": "nobody", "role": "viewer"}, format="json"
    )
    assert unknown.status_code == 400 and "username" in unknown.json()["error"]["fields"]
    bad_role = client.post(
        "/api/teams/alpha/members/", {"username": "olive", "role": "king"}, format="json"
    )
    assert bad_role.status_code == 400 and "role" in bad_role.json()["error"]["fields"]


def test_site_admin_creates_teams_and_sees_them_all(admin, owner, client_for):
    created = client_for(admin).post("/api/teams/", {"name": "Gamma Ray"}, format="json")
    assert created.status_code == 201 and created.json()["slug"] == "gamma-ray"
    again = client_for(admin).post("/api/teams/", {"name": "Gamma Ray"}, format="json")
    assert again.status_code == 400
    slugs = [row["slug"] for row in client_for(admin).get("/api/teams/").json()["results"]]
    assert slugs == ["alpha", "gamma-ray"]
    mine = [row["slug"] for row in client_for(owner).get("/api/teams/").json()["results"]]
    assert mine == ["alpha"]


def test_host_list_filters(owner, client_for):
    from apps.hosts.models import Host
    from tests.fixtures import make_host

    eu = make_host("test-eu")
    make_host("test-us")
    make_host("test-down", online=False)
    Host.objects.filter(pk=eu.pk).update(labels={"region": "eu", "ssd": ""}, cordoned=True)
    client = client_for(owner)

    def names(query):
        response = client.get(f"/api/hosts/?{query}")
        assert response.status_code == 200, response.content
        return sorted(row["name"] for row in response.json()["results"])

    assert names("status=online") == ["test-eu", "test-us"]
    assert names("cordoned=true") == ["test-eu"]
    assert names("cordoned=0&status=online") == ["test-us"]
    assert names("label=region=eu") == ["test-eu"]
    assert names("label=ssd") == ["test-eu"]
    assert names("label=region=us") == []
    ordered = client.get("/api/hosts/?ordering=-name").json()["results"]
    assert [row["name"] for row in ordered] == ["test-us", "test-eu", "test-down"]
