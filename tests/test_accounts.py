"""API tokens (management command, header forms, expiry, revocation, read-only) and ensure_admin."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, User
from apps.accounts.services import create_token
from apps.teams.choices import Role
from apps.teams.models import Membership, Team

pytestmark = pytest.mark.django_db


def token_client(key: str, keyword: str = "Token") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    return client


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_token_prints_only_the_key_and_stores_only_its_hash(owner):
    key = run("create_token", owner.username, "--name", "ci").strip()
    assert "\n" not in key and " " not in key and len(key) >= 32
    token = ApiToken.objects.get(user=owner)
    assert token.name == "ci"
    assert token.prefix == key[:8]
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in {str(getattr(token, f.attname)) for f in ApiToken._meta.fields}


def test_create_token_options(owner):
    run("create_token", owner.username, "--read-only", "--expires-days", "3")
    token = ApiToken.objects.get(user=owner)
    assert token.read_only
    assert timedelta(days=2, hours=23) < token.expires - timezone.now() <= timedelta(days=3)


def test_create_token_errors_are_clear(owner):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("create_token", "ghost")
    with pytest.raises(CommandError, match="positive number of days"):
        run("create_token", owner.username, "--expires-days", "0")


@pytest.mark.parametrize("keyword", ["Token", "Bearer", "bearer"])
def test_token_and_bearer_headers_authenticate(owner, keyword):
    _, key = create_token(owner)
    response = token_client(key, keyword).get("/api/me/")
    assert response.status_code == 200, response.content
    assert response.json()["username"] == owner.username
    assert ApiToken.objects.get(user=owner).last_used is not None


def test_unknown_token_is_401(db):
    response = token_client("not-a-real-key").get("/api/containers/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Invalid token."


def test_malformed_authorization_header_is_401(owner):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token a b")
    response = client.get("/api/containers/")
    assert response.status_code == 401
    assert "expected 'Token <key>'" in response.json()["error"]["message"]


def test_expired_token_is_401_with_reason(owner):
    token, key = create_token(owner, expires_days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(seconds=1))
    response = token_client(key).get("/api/containers/")
    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "authentication_failed",
        "message": "Token has expired.",
        "fields": {},
    }


def test_revoked_token_is_401_with_reason(owner):
    _, key = create_token(owner)
    assert token_client(key).delete(f"/api/tokens/{ApiToken.objects.get().pk}/").status_code == 204
    response = token_client(key).get("/api/containers/")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Token has been revoked."


def test_inactive_user_token_is_401(owner):
    _, key = create_token(owner)
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert token_client(key).get("/api/containers/").status_code == 401


def test_read_only_token_reads_but_cannot_write(owner, host):
    _, key = create_token(owner, read_only=True)
    client = token_client(key)
    assert client.get("/api/containers/").status_code == 200
    response = client.post("/api/containers/", {"image": "busybox"}, format="json")
    assert response.status_code == 403
    assert "read-only" in response.json()["error"]["message"]
    assert client.delete("/api/tokens/1/").status_code == 403


def test_anonymous_gets_401_with_www_authenticate(db):
    response = APIClient().get("/api/containers/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert response.json()["error"]["code"] == "not_authenticated"


def test_tokens_api_creates_lists_and_only_shows_own(owner, outsider, client_for):
    response = client_for(owner).post(
        "/api/tokens/", {"name": "laptop", "read_only": True}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["key"].startswith(body["prefix"]) and body["read_only"] is True
    assert token_client(body["key"]).get("/api/me/").status_code == 200
    listing = client_for(owner).get("/api/tokens/").json()
    assert [t["name"] for t in listing["results"]] == ["laptop"]
    assert "key" not in listing["results"][0]
    assert client_for(outsider).get("/api/tokens/").json()["count"] == 0
    assert client_for(outsider).delete(f"/api/tokens/{body['id']}/").status_code == 404


def test_me_lists_teams_with_roles(operator, client_for):
    body = client_for(operator).get("/api/me/").json()
    assert body["teams"] == [{"slug": "alpha", "name": "Alpha", "role": "operator"}]


def test_ensure_admin_creates_then_reports_existing(db, monkeypatch):
    monkeypatch.delenv("BERTH_ADMIN_PASSWORD", raising=False)
    first = run("ensure_admin")
    assert first.startswith("created admin user admin with password ")
    assert first.count("\n") == 1
    password = first.strip().rsplit(" ", 1)[1]
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    default = Team.objects.get(name="default")
    assert Membership.objects.get(team=default, user=admin).role == Role.OWNER
    assert run("ensure_admin") == "admin user admin exists\n"
    assert User.objects.filter(username="admin").count() == 1
    assert Team.objects.filter(name="default").count() == 1


def test_ensure_admin_uses_and_resets_env_password(db, monkeypatch):
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "first-secret-1")
    out = run("ensure_admin", "--username", "boss")
    assert out == "created admin user boss with password first-secret-1\n"
    monkeypatch.setenv("BERTH_ADMIN_PASSWORD", "second-secret-2")
    assert run("ensure_admin", "--username", "boss") == "admin user boss exists\n"
    assert User.objects.get(username="boss").check_password("second-secret-2")
