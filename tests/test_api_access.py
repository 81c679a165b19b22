"""Nothing but /healthz and /login/ answers an anonymous visitor."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

API_CALLS = [
    ("get", "/api/containers/"),
    ("post", "/api/containers/"),
    ("get", "/api/containers/" + "a" * 64 + "/"),
    ("delete", "/api/containers/" + "a" * 64 + "/"),
    ("post", "/api/containers/" + "a" * 64 + "/stop/"),
    ("post", "/api/containers/" + "a" * 64 + "/kill/"),
    ("get", "/api/containers/" + "a" * 64 + "/logs/"),
    ("get", "/api/hosts/"),
    ("get", "/api/hosts/any/"),
    ("get", "/api/images/"),
    ("get", "/api/images/1/"),
    ("get", "/api/teams/"),
    ("get", "/api/me/"),
    ("get", "/api/tokens/"),
    ("post", "/api/tokens/"),
    ("get", "/api/schema/"),
]

PAGES = ["/", "/hosts/", "/containers/", "/api/docs/", "/admin/", "/admin/login/"]


@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_anonymous_api_calls_are_401(method, path):
    response = getattr(APIClient(), method)(path)
    assert response.status_code == 401, (path, response.status_code)
    assert response.json()["error"]["code"] == "not_authenticated"


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_pages_redirect_to_login(path):
    response = Client().get(path, follow=True)
    assert response.redirect_chain, path
    assert response.redirect_chain[-1][0].startswith("/login/?next=")
    assert response.status_code == 200 and b'name="password"' in response.content


def test_healthz_is_open_and_checks_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_healthz_reports_a_broken_database(monkeypatch):
    from apps.dashboard import views

    class Broken:
        def cursor(self):
            raise RuntimeError("db down")

    monkeypatch.setattr(views, "connection", Broken())
    assert Client().get("/healthz").status_code == 503


def test_login_page_is_open():
    response = Client().get("/login/")
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_session_login_works_for_the_api(owner):
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username=owner.username, password="pw-" + owner.username)
    assert client.get("/api/containers/").status_code == 200
    # Session-authenticated writes need the CSRF token, like any browser form.
    assert client.post("/api/containers/", {"image": "busybox"}, format="json").status_code == 403


def test_schema_is_served_to_signed_in_users(owner, client_for):
    response = client_for(owner).get("/api/schema/?format=json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert {"/api/containers/", "/api/containers/{id}/logs/", "/api/hosts/{id}/"} <= paths.keys()


def test_unknown_api_path_is_404_json(owner, client_for):
    response = client_for(owner).get("/api/nope/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert Client().get("/no-such-page/").status_code == 404
