"""Server-rendered pages: login flow, team restriction, static CSS."""

import pytest
from django.test import Client

from apps.containers.models import Container
from tests.fixtures import BUSYBOX, make_host

pytestmark = pytest.mark.django_db


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_container(team, host, name):
    return Container.objects.create(
        name=name, team=team, host=host, image=host.images.get(), image_reference=BUSYBOX
    )


def test_login_then_overview(owner):
    client = Client()
    response = client.post("/login/", {"username": owner.username, "password": "pw-olive"})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/")
    assert page.status_code == 200
    assert b"Overview" in page.content and b"Alpha" in page.content


def test_wrong_password_stays_on_login(owner):
    response = Client().post("/login/", {"username": owner.username, "password": "nope"})
    assert response.status_code == 200
    assert b"did not match" in response.content


def test_logout_is_a_post(owner):
    client = browser(owner)
    assert client.get("/logout/").status_code == 405
    assert client.post("/logout/")["Location"] == "/login/"
    assert client.get("/")["Location"].startswith("/login/")


def test_containers_page_shows_only_own_teams(viewer, team, other_team, host):
    make_container(team, host, "ours-web")
    make_container(other_team, host, "theirs-db")
    page = browser(viewer).get("/containers/").content.decode()
    assert "ours-web" in page and "theirs-db" not in page
    overview = browser(viewer).get("/").content.decode()
    assert "ours-web" in overview and "theirs-db" not in overview


def test_containers_page_filters_by_state(owner, team, host):
    make_container(team, host, "pending-one")
    page = browser(owner).get("/containers/?state=exited").content.decode()
    assert "pending-one" not in page and "No containers." in page


def test_hosts_page_lists_hosts(outsider):
    host = make_host("node-9")
    page = browser(outsider).get("/hosts/").content.decode()
    assert host.name in page and "online" in page


def test_api_docs_page_points_at_the_schema(owner):
    page = browser(owner).get("/api/docs/").content.decode()
    assert "/api/schema/" in page
    assert "<script" not in page and 'src="http' not in page


def test_stylesheet_is_served_without_a_cdn(owner):
    page = browser(owner).get("/").content.decode()
    assert 'href="/static/berth.css"' in page and "http" not in page.split("<body>")[0]
    css = Client().get("/static/berth.css")
    assert css.status_code == 200
    assert b"font-family" in b"".join(css.streaming_content)
