"""Server-rendered pages: login flow, team restriction, roles, forms, static files."""

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
    assert 'src="http' not in page and 'href="http' not in page.split("<main>")[0]


def test_stylesheet_is_served_without_a_cdn(owner):
    page = browser(owner).get("/").content.decode()
    assert 'href="/static/berth.css"' in page and "http" not in page.split("<body>")[0]
    css = Client().get("/static/berth.css")
    assert css.status_code == 200
    assert b"font-family" in b"".join(css.streaming_content)


PAGES = ("/", "/hosts/", "/containers/", "/images/", "/operations/", "/registries/", "/volumes/",
         "/networks/", "/audit/",
         "/teams/", "/tokens/", "/profile/", "/api/docs/")


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_for_a_viewer_without_actions(viewer, team, host, path):
    make_container(team, host, "ours-web")
    page = browser(viewer).get(path)
    assert page.status_code == 200, path
    assert b"data-action" not in page.content


def test_owner_is_offered_actions(owner, team, host):
    container = make_container(team, host, "ours-web")
    listing = browser(owner).get("/containers/").content.decode()
    assert 'id="bulk"' in listing and f'value="{container.id}"' in listing
    detail = browser(owner).get(f"/containers/{container.id}/").content.decode()
    assert 'id="actions"' in detail and "/stop/" in detail


def test_viewer_post_is_refused_like_the_api(viewer, team, host):
    container = make_container(team, host, "ours-web")
    client = browser(viewer)
    assert client.post(f"/containers/{container.id}/stop/").status_code == 403
    response = client.post("/containers/bulk/", {"action": "remove", "ids": [container.id]},
                           follow=True)
    assert "only allows reading" in response.content.decode()
    container.refresh_from_db()
    assert container.state == "pending"


def test_other_teams_container_is_not_found(outsider, team, host):
    container = make_container(team, host, "ours-web")
    assert browser(outsider).get(f"/containers/{container.id}/").status_code == 404
    assert browser(outsider).post(f"/containers/{container.id}/kill/").status_code == 404


def test_create_form_shows_the_service_error_next_to_its_field(owner, host):
    page = browser(owner).post("/containers/new/", {"image": "nosuch:1", "restart_policy": "no"})
    assert page.status_code == 200
    html = page.content.decode()
    field = html.split('data-field="image"', 1)[1].split('data-field="name"', 1)[0]
    assert "unknown image" in field and "errorlist" in field


def test_create_form_limits_error_is_on_the_memory_field(owner, host):
    page = browser(owner).post("/containers/new/", {
        "image": "busybox", "memory": "1k", "restart_policy": "no"}).content.decode()
    field = page.split('data-field="memory"', 1)[1].split('data-field="cpus"', 1)[0]
    assert "errorlist" in field


def test_action_error_is_shown(owner, team, host):
    container = make_container(team, host, "ours-web")  # pending: cannot be paused
    page = browser(owner).post(f"/containers/{container.id}/pause/", follow=True)
    assert "cannot pause container ours-web: it is pending" in page.content.decode()


def test_token_is_shown_once(owner):
    client = browser(owner)
    page = client.post("/tokens/new/", {"name": "ci"}, follow=True).content.decode()
    assert 'id="new-token"' in page
    assert 'id="new-token"' not in client.get("/tokens/").content.decode()


def test_vendored_libraries_are_served_locally(owner, team, host):
    container = make_container(team, host, "ours-web")
    page = browser(owner).get(f"/containers/{container.id}/").content.decode()
    for name in ("vendor/htmx.min.js", "vendor/uPlot.iife.min.js", "dashboard/logs.js"):
        assert f'src="/static/{name}"' in page
        response = Client().get(f"/static/{name}")
        assert response.status_code == 200, name


def test_terminal_session_needs_an_acting_role_and_a_running_container(viewer, owner, team, host):
    container = make_container(team, host, "ours-web")
    refused = browser(viewer).post(f"/containers/{container.id}/exec/", {"command": "sh"})
    assert refused.status_code == 403 and "only allows reading" in refused.json()["error"][
        "message"]
    not_running = browser(owner).post(f"/containers/{container.id}/exec/", {"command": "sh"})
    assert not_running.status_code == 409 and "not running" in not_running.json()["error"][
        "message"]


def test_operation_page_shows_a_bar_per_layer(owner, team, host):
    from apps.operations.models import Operation

    layers = {"sha256:" + "a" * 64: {"state": "downloading", "done": 25, "total": 100},
              "sha256:" + "b" * 64: {"state": "exists", "done": 0, "total": 7}}
    running = Operation.objects.create(kind="pull", team=team, host=host, target="x/y:1",
                                       status="running",
                                       progress={"layers": layers, "done": 25, "total": 107})
    queued = Operation.objects.create(kind="pull", team=team, host=host, target="x/y:2")
    page = browser(owner).get(f"/operations/{running.id}/").content.decode()
    assert 'data-total role="progressbar" aria-valuenow="23"' in page
    assert 'aria-valuenow="25"' in page and 'aria-valuenow="100"' in page
    assert page.count("data-layer=") == 2
    empty = browser(owner).get(f"/operations/{queued.id}/")
    assert empty.status_code == 200 and b'aria-valuenow="0"' in empty.content
    listing = browser(owner).get("/operations/").content.decode()
    assert 'aria-valuenow="23"' in listing


def test_audit_page_follows_the_api_rule(owner, viewer, team):
    from apps.audit.models import AuditEvent

    AuditEvent.objects.create(action="container.create", actor_name="olive", team=team,
                              team_slug=team.slug, object_repr="ours-web")
    assert "ours-web" in browser(owner).get("/audit/").content.decode()
    assert "ours-web" not in browser(viewer).get("/audit/").content.decode()
    bad = browser(owner).get("/audit/?since=yesterday").content.decode()
    assert "ISO 8601" in bad


def test_create_form_queues_the_run_and_the_page_shows_its_event(
    owner, host, broker, django_capture_on_commit_callbacks
):
    from tests.fixtures import queued_messages

    with django_capture_on_commit_callbacks(execute=True):
        response = browser(owner).post("/containers/new/", {
            "image": "busybox", "name": "from-form", "command": "sh -c 'echo hi'",
            "env": "A=1\nB=two", "labels": "tier=web", "memory": "64m", "restart_policy": "no"})
    container = Container.objects.get(name="from-form")
    assert response["Location"] == f"/containers/{container.id}/"
    assert container.command == ["sh", "-c", "echo hi"] and container.env == ["A=1", "B=two"]
    assert container.labels == {"tier": "web"} and container.options["memory"] == 64 * 2**20
    [message] = queued_messages(broker, host.name)
    assert message["task"] == "agent.container_run" and message["args"][0] == container.id
    page = browser(owner).get(f"/containers/{container.id}/").content.decode()
    assert "container.create" in page


def test_second_factor_on_from_the_profile_then_asked_at_login(owner):
    import re
    from urllib.parse import parse_qs, urlsplit

    import pyotp

    client = browser(owner)
    page = client.post("/profile/totp/enrol/", follow=True).content.decode()
    uri = re.search(r'id="totp-uri"[^>]*>([^<]+)<', page).group(1).replace("&amp;", "&")
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    wrong = client.post("/profile/totp/confirm/", {"code": "000000"}, follow=True)
    assert "wrong or expired code" in wrong.content.decode()
    client.post("/profile/totp/confirm/", {"code": pyotp.TOTP(secret).now()})
    assert "Turn off" in client.get("/profile/").content.decode()
    login = Client().post("/login/", {"username": owner.username, "password": "pw-olive"})
    assert login.status_code == 200 and b"authenticator" in login.content


def test_owner_manages_members_and_the_team_keeps_an_owner(owner, viewer, team):
    from apps.teams.services import role_in

    client = browser(owner)
    client.post(f"/teams/{team.id}/members/", {"username": viewer.username, "role": "operator"})
    assert role_in(viewer, team) == "operator"
    page = client.post(f"/teams/{team.id}/members/remove/", {"username": owner.username},
                       follow=True).content.decode()
    assert "must keep at least one owner" in page and role_in(owner, team) == "owner"
    refused = browser(viewer).post(f"/teams/{team.id}/members/",
                                   {"username": viewer.username, "role": "owner"}, follow=True)
    assert "only owners" in refused.content.decode() and role_in(viewer, team) == "operator"
    client.post(f"/teams/{team.id}/members/remove/", {"username": viewer.username})
    assert role_in(viewer, team) is None


def test_networks_page_lists_members_and_offers_connect_to_operators(owner, viewer, team, host):
    from apps.networks.models import ContainerNetwork, Network

    network = Network.objects.create(team=team, host=host, name="backend",
                                     engine_name=f"{team.slug}.backend", bridge="br-test",
                                     subnet="10.9.0.0/24", gateway="10.9.0.1")
    container = make_container(team, host, "ours-web")
    ContainerNetwork.objects.create(container=container,
                                    networks={network.engine_name: {"ip": "10.9.0.2"}})
    page = browser(owner).get("/networks/").content.decode()
    assert "ours-web" in page and f"/networks/{network.id}/connect/" in page
    seen = browser(viewer).get("/networks/").content.decode()
    assert "ours-web" in seen and "/connect/" not in seen and "data-action" not in seen
    refused = browser(viewer).post(f"/networks/{network.id}/disconnect/",
                                   {"container": container.id})
    assert refused.status_code == 403
    detail = browser(owner).get(f"/containers/{container.id}/").content.decode()
    assert "10.9.0.2" in detail


def test_registry_added_edited_and_errors_shown(owner, team):
    from apps.images.models import Registry

    client = browser(owner)
    client.post("/registries/new/", {"name": "local", "url": "http://127.0.0.1:5999",
                                     "username": "u", "password": "p", "team": team.slug})
    registry = Registry.objects.get(team=team, name="local")
    assert registry.insecure and registry.has_password
    client.post(f"/registries/{registry.id}/update/", {
        "username": "v", "mirrors": "http://127.0.0.1:5998", "insecure": "1"})
    registry.refresh_from_db()
    assert registry.username == "v" and registry.mirrors == ["http://127.0.0.1:5998"]
    assert registry.has_password  # an empty password field keeps it
    bad = client.post("/registries/new/", {"name": "x", "url": "ftp://nope", "team": team.slug},
                      follow=True).content.decode()
    assert 'class="error"' in bad and "(url)" in bad


def test_bulk_action_never_redirects_off_site(owner, team, host):
    container = make_container(team, host, "ours-web")
    client = browser(owner)
    away = client.post("/containers/bulk/", {"action": "pause", "ids": [container.id],
                                             "next": "https://evil.example/"})
    assert away["Location"] == "/containers/"
    back = client.post("/containers/bulk/", {"action": "pause", "ids": [container.id],
                                             "next": "/containers/?state=pending"})
    assert back["Location"] == "/containers/?state=pending"
