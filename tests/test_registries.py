"""Registries API: team scoping, roles, validation, and the password encrypted at rest and
never shown."""

import pytest
from django.db import connection

from apps.images.models import Registry
from apps.images.services import registries_for
from berth.crypto import decrypt_text

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pässword!"


def create(client, **body):
    data = {"name": "local", "url": "http://127.0.0.1:5000", "username": "bob"}
    data.update(body)
    return client.post("/api/registries/", data, format="json")


def test_create_shows_everything_but_the_password(owner, client_for):
    response = create(client_for(owner), password=SECRET, mirrors=["http://127.0.0.1:5001/"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body == {
        "id": body["id"],
        "name": "local",
        "team": "alpha",
        "url": "http://127.0.0.1:5000",
        "host": "127.0.0.1:5000",
        "username": "bob",
        "has_password": True,
        "insecure": True,  # http:// is insecure by definition
        "mirrors": ["http://127.0.0.1:5001"],
        "created_at": body["created_at"],
    }
    assert SECRET not in response.content.decode()
    listed = client_for(owner).get("/api/registries/").content.decode()
    detail = client_for(owner).get(f"/api/registries/{body['id']}/").content.decode()
    assert SECRET not in listed and SECRET not in detail
    assert '"has_password":true' in detail


def test_password_is_encrypted_in_the_database(owner, client_for):
    registry_id = create(client_for(owner), password=SECRET).json()["id"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM images_registry WHERE id = %s", [registry_id])
        row = cursor.fetchone()
    assert not any(SECRET in str(column) for column in row)
    stored = Registry.objects.get(pk=registry_id).password_encrypted
    assert stored and decrypt_text(stored) == SECRET


def test_patch_changes_fields_and_keeps_or_clears_the_password(owner, client_for):
    client = client_for(owner)
    registry_id = create(client, password=SECRET).json()["id"]
    patched = client.patch(
        f"/api/registries/{registry_id}/", {"username": "carol"}, format="json"
    ).json()
    assert patched["username"] == "carol" and patched["has_password"] is True
    assert registries_for(Registry.objects.get().team)["127.0.0.1:5000"]["password"] == SECRET
    cleared = client.patch(f"/api/registries/{registry_id}/", {"password": ""}, format="json")
    assert cleared.json()["has_password"] is False
    assert Registry.objects.get().password_encrypted == ""


def test_registries_for_builds_the_protocol_argument(owner, team, client_for):
    client = client_for(owner)
    create(client, password=SECRET)
    create(
        client,
        name="hub",
        url="https://index.docker.io/v1/",
        username="me",
        password="hubpw",
        mirrors=["http://127.0.0.1:5001"],
    )
    assert registries_for(team) == {
        "127.0.0.1:5000": {
            "username": "bob",
            "password": SECRET,
            "insecure": True,
            "mirrors": [],
        },
        "docker.io": {
            "username": "me",
            "password": "hubpw",
            "insecure": False,
            "mirrors": ["http://127.0.0.1:5001"],
        },
    }
    assert list(registries_for(team, ["docker.io"])) == ["docker.io"]


def test_registries_are_team_scoped(owner, outsider, client_for):
    registry_id = create(client_for(owner)).json()["id"]
    client = client_for(outsider)
    assert client.get("/api/registries/").json()["count"] == 0
    assert client.get(f"/api/registries/{registry_id}/").status_code == 404
    patch = client.patch(f"/api/registries/{registry_id}/", {"username": "x"}, format="json")
    assert patch.status_code == 404
    assert client.delete(f"/api/registries/{registry_id}/").status_code == 404
    assert Registry.objects.get().username == "bob"


def test_viewer_reads_but_cannot_change(owner, viewer, client_for):
    registry_id = create(client_for(owner), password=SECRET).json()["id"]
    client = client_for(viewer)
    assert client.get("/api/registries/").json()["count"] == 1
    assert SECRET not in client.get(f"/api/registries/{registry_id}/").content.decode()
    assert create(client, name="other", url="https://r.example").status_code == 403
    patch = client.patch(f"/api/registries/{registry_id}/", {"username": "x"}, format="json")
    assert patch.status_code == 403
    assert client.delete(f"/api/registries/{registry_id}/").status_code == 403


def test_operator_deletes(operator, client_for):
    client = client_for(operator)
    registry_id = create(client).json()["id"]
    assert client.delete(f"/api/registries/{registry_id}/").status_code == 204
    assert not Registry.objects.exists()


def test_put_is_not_offered(owner, client_for):
    registry_id = create(client_for(owner)).json()["id"]
    response = client_for(owner).put(f"/api/registries/{registry_id}/", {}, format="json")
    assert response.status_code == 405


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": ""}, "url", "may not be blank"),
        ({"url": "ftp://r.example"}, "url", "scheme must be http or https"),
        ({"url": "https://u:p@r.example"}, "url", "credentials"),
        ({"url": "https://r.example/some/path"}, "url", "without a path"),
        ({"url": "https://myregistry"}, "url", "cannot name registry 'myregistry'"),
        ({"url": "https://r.example:99999"}, "url", "invalid URL"),
        ({"url": "http://127.0.0.1:5000", "insecure": False}, "insecure", "insecure by defin"),
        ({"mirrors": ["nope://x"]}, "mirrors", "scheme must be http or https"),
        ({"mirrors": "http://x.example"}, "mirrors", ""),
        ({"name": ""}, "name", "may not be blank"),
        ({"team": "beta"}, "team", "unknown team 'beta'"),
    ],
)
def test_invalid_registries_are_400_with_a_reason(
    owner, other_team, client_for, body, field, message
):
    response = create(client_for(owner), **body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert field in error["fields"], error
    assert message in " ".join(error["fields"][field])
    assert not Registry.objects.exists()


def test_duplicate_name_or_host_is_400(owner, client_for):
    client = client_for(owner)
    create(client)
    same_name = create(client, url="https://r.example")
    assert same_name.status_code == 400
    assert "already has a registry named 'local'" in same_name.json()["error"]["message"]
    same_host = create(client, name="again")
    assert same_host.status_code == 400
    assert "already has a registry for 127.0.0.1:5000" in same_host.json()["error"]["message"]


def test_bare_host_means_https_and_hub_aliases_mean_docker_io(owner, client_for):
    client = client_for(owner)
    body = create(client, url="Registry.Example:5000").json()
    assert (body["url"], body["host"], body["insecure"]) == (
        "https://registry.example:5000",
        "registry.example:5000",
        False,
    )
    hub = create(client, name="hub", url="https://registry-1.docker.io").json()
    assert hub["host"] == "docker.io"


def test_unreadable_password_is_a_clear_409(owner, team, client_for, settings, host):
    create(client_for(owner), password=SECRET)
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    response = client_for(owner).post(
        "/api/images/pull/", {"reference": "127.0.0.1:5000/app:1"}, format="json"
    )
    assert response.status_code == 409
    assert "cannot be decrypted" in response.json()["error"]["message"]


def test_rotated_secret_key_still_decrypts_with_fallbacks(owner, team, client_for, settings):
    create(client_for(owner), password=SECRET)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-" + "x" * 40
    settings.SECRET_KEY_FALLBACKS = [old]
    assert registries_for(team)["127.0.0.1:5000"]["password"] == SECRET
