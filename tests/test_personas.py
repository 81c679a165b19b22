"""Personas over the control-plane endpoints: owner, operator and viewer of team alpha,
an outsider (owner of beta), a site admin, and anonymous; allowed and denied, including
WebSocket subscriptions. Another team's object is a 404, never a 403."""

import pytest
from rest_framework.test import APIClient

from tests.fixtures import make_container

PERSONAS = ("owner", "operator", "viewer", "outsider", "admin", "anonymous")
C = "{container}"
H = "{host}"

# method, path, body, expected status per persona (in PERSONAS order)
CASES = [
    ("get", "/api/containers/", None, (200, 200, 200, 200, 200, 401)),
    ("get", f"/api/containers/{C}/", None, (200, 200, 200, 404, 200, 401)),
    ("post", f"/api/containers/{C}/stop/", {}, (202, 202, 403, 404, 202, 401)),
    ("post", f"/api/containers/{C}/rename/", {"name": "renamed"}, (200, 200, 403, 404, 200, 401)),
    ("delete", f"/api/containers/{C}/?force=1", None, (202, 202, 403, 404, 202, 401)),
    (
        "post",
        "/api/containers/",
        {"image": "busybox", "team": "alpha"},
        (201, 201, 403, 400, 201, 401),  # outsider: "unknown team", like a missing one
    ),
    ("get", "/api/teams/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/teams/alpha/", None, (200, 200, 200, 404, 200, 401)),
    ("get", "/api/teams/alpha/members/", None, (200, 200, 200, 404, 200, 401)),
    (
        "post",
        "/api/teams/alpha/members/",
        {"username": "otto", "role": "viewer"},
        (200, 403, 403, 404, 200, 401),
    ),
    ("delete", "/api/teams/alpha/members/vera/", None, (204, 403, 403, 404, 204, 401)),
    ("get", "/api/teams/alpha/policy/", None, (200, 200, 200, 404, 200, 401)),
    ("patch", "/api/teams/alpha/policy/", {"max_containers": 9}, (403, 403, 403, 404, 200, 401)),
    ("post", "/api/teams/", {"name": "Gamma"}, (403, 403, 403, 403, 201, 401)),
    ("get", "/api/hosts/", None, (200, 200, 200, 200, 200, 401)),
    ("get", f"/api/hosts/{H}/", None, (200, 200, 200, 200, 200, 401)),
    ("patch", f"/api/hosts/{H}/", {"labels": {"a": "b"}}, (403, 403, 403, 403, 200, 401)),
    ("post", f"/api/hosts/{H}/cordon/", None, (403, 403, 403, 403, 200, 401)),
    ("post", f"/api/hosts/{H}/drain/", {}, (403, 403, 403, 403, 200, 401)),
    ("get", "/api/join-tokens/", None, (403, 403, 403, 403, 200, 401)),
    ("post", "/api/join-tokens/", {}, (403, 403, 403, 403, 201, 401)),
    ("get", "/api/audit/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/audit/export/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/images/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/operations/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/tokens/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/me/totp/", None, (200, 200, 200, 200, 200, 401)),
    ("get", "/api/schema/", None, (200, 200, 200, 200, 200, 401)),
]


@pytest.fixture
def people(owner, operator, viewer, outsider, admin):
    return {
        "owner": owner,
        "operator": operator,
        "viewer": viewer,
        "outsider": outsider,
        "admin": admin,
        "anonymous": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path", "body", "expected"), CASES)
@pytest.mark.parametrize("persona", PERSONAS)
def test_persona(method, path, body, expected, persona, people, team, host):
    container = make_container(team, host)
    client = APIClient()
    if people[persona] is not None:
        client.force_authenticate(people[persona])
    url = path.replace(C, container.id).replace(H, host.name)
    response = getattr(client, method)(url, body, format="json")
    wanted = expected[PERSONAS.index(persona)]
    assert response.status_code == wanted, (persona, method, url, response.content[:300])
    if wanted >= 400 and response.get("Content-Type", "").startswith("application/json"):
        assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_every_persona_row_is_complete():
    assert all(len(expected) == len(PERSONAS) for *_, expected in CASES)


# ---- WebSocket subscriptions --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("persona", "allowed"),
    [("owner", True), ("operator", True), ("viewer", True), ("outsider", False), ("admin", True)],
)
def test_websocket_subscription(persona, allowed, people, team, memory_layer):
    from tests.test_consumers import communicator, run

    async def scenario():
        comm = communicator(people[persona])
        connected, _ = await comm.connect()
        assert connected
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        answer = await comm.receive_json_from()
        await comm.disconnect()
        return answer

    answer = run(scenario)
    if allowed:
        assert answer == {"type": "subscribed", "team": "alpha"}
    else:
        assert answer["type"] == "error" and answer["error"]["code"] == "not_found"


@pytest.mark.django_db
def test_schema_ui_is_served_locally_to_signed_in_users(owner, client_for):
    response = client_for(owner).get("/api/schema/ui/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema/" in page
    assert "cdn" not in page.lower()  # assets come from this server
    assert client_for().get("/api/schema/ui/").status_code in (401, 403)
