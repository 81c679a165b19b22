"""Authentication: API token lifecycle over the API (expiry, revocation, read-only,
last use), browser login throttling, the TOTP second factor, and CSRF on sessions."""

import time
from datetime import timedelta

import pyotp
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, TotpDevice
from berth.crypto import decrypt_text

pytestmark = pytest.mark.django_db


def token_client(key: str) -> APIClient:
    return APIClient(HTTP_AUTHORIZATION=f"Bearer {key}")


def new_token(client, **body) -> dict:
    response = client.post("/api/tokens/", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


# ---- API tokens ---------------------------------------------------------------------------


def test_a_token_works_until_revoked_over_the_api(owner, client_for):
    created = new_token(client_for(owner), name="ci")
    assert token_client(created["key"]).get("/api/me/").json()["username"] == "olive"
    assert client_for(owner).delete(f"/api/tokens/{created['id']}/").status_code == 204
    refused = token_client(created["key"]).get("/api/me/")
    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "Token has been revoked."
    listed = client_for(owner).get("/api/tokens/").json()["results"]
    assert listed[0]["revoked"] is True  # kept, for the audit trail


def test_a_token_expires(owner, client_for):
    created = new_token(client_for(owner), expires_days=1)
    assert token_client(created["key"]).get("/api/me/").status_code == 200
    ApiToken.objects.filter(pk=created["id"]).update(expires=timezone.now() - timedelta(seconds=1))
    refused = token_client(created["key"]).get("/api/me/")
    assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]


def test_a_read_only_token_cannot_write_anything(owner, host, client_for):
    created = new_token(client_for(owner), read_only=True)
    client = token_client(created["key"])
    assert client.get("/api/containers/").status_code == 200
    for method, path in [
        ("post", "/api/containers/"),
        ("post", "/api/tokens/"),
        ("delete", f"/api/tokens/{created['id']}/"),
        ("patch", "/api/teams/alpha/policy/"),
        ("post", "/api/me/totp/"),
    ]:
        response = getattr(client, method)(path, {}, format="json")
        assert response.status_code == 403, (method, path)
        assert "read-only" in response.json()["error"]["message"]


def test_last_used_is_recorded(owner, client_for):
    created = new_token(client_for(owner))
    assert created["last_used"] is None
    token_client(created["key"]).get("/api/me/")
    assert ApiToken.objects.get(pk=created["id"]).last_used is not None


def test_tokens_are_the_owners_alone(owner, outsider, client_for):
    created = new_token(client_for(owner))
    assert client_for(outsider).delete(f"/api/tokens/{created['id']}/").status_code == 404
    assert client_for(outsider).get(f"/api/tokens/{created['id']}/").status_code == 404


def test_token_create_and_revoke_are_audited(owner, client_for):
    from apps.audit.models import AuditEvent

    created = new_token(client_for(owner), name="ci")
    client_for(owner).delete(f"/api/tokens/{created['id']}/")
    events = AuditEvent.objects.order_by("id")
    assert [e.action for e in events] == ["token.create", "token.revoke"]
    assert created["key"] not in str(list(events.values()))


# ---- login throttling ---------------------------------------------------------------------


def login(client: Client, username: str, password: str, otp: str = "", ip="198.51.100.1"):
    return client.post(
        "/login/", {"username": username, "password": password, "otp": otp}, REMOTE_ADDR=ip
    )


def test_too_many_failures_lock_the_name(owner, settings):
    settings.BERTH_LOGIN_MAX_FAILURES = 3
    client = Client()
    for _ in range(3):
        assert b"did not match" in login(client, "olive", "wrong").content
    locked = login(client, "olive", "pw-olive")  # even the right password now
    assert locked.status_code == 200 and b"Too many failed logins" in locked.content
    assert "_auth_user_id" not in client.session
    # Another name is not locked by olive's failures (from another address).
    assert login(Client(), "vera", "nope", ip="198.51.100.2").status_code == 200


def test_the_lock_ends_with_the_window(owner, settings):
    from apps.accounts.models import LoginFailures

    settings.BERTH_LOGIN_MAX_FAILURES = 2
    client = Client()
    for _ in range(2):
        login(client, "olive", "wrong")
    LoginFailures.objects.update(window_ends=timezone.now() - timedelta(seconds=1))
    assert login(client, "olive", "pw-olive").status_code == 302


def test_an_address_guessing_many_names_is_locked(db, settings):
    settings.BERTH_LOGIN_MAX_FAILURES = 1  # four per address
    for number in range(4):
        login(Client(), f"user{number}", "guess", ip="203.0.113.9")
    locked = login(Client(), "someone-else", "guess", ip="203.0.113.9")
    assert b"Too many failed logins" in locked.content


def test_a_good_login_clears_the_names_count(owner, settings):
    settings.BERTH_LOGIN_MAX_FAILURES = 2
    login(Client(), "olive", "wrong")
    assert login(Client(), "olive", "pw-olive").status_code == 302
    login(Client(), "olive", "wrong")
    assert login(Client(), "olive", "pw-olive").status_code == 302


# ---- TOTP ---------------------------------------------------------------------------------


def enable_totp(client) -> pyotp.TOTP:
    enrolled = client.post("/api/me/totp/")
    assert enrolled.status_code == 201
    totp = pyotp.parse_uri(enrolled.json()["uri"])
    confirmed = client.post("/api/me/totp/confirm/", {"code": totp.now()}, format="json")
    assert confirmed.status_code == 200, confirmed.content
    return totp


def next_code(totp: pyotp.TOTP) -> str:
    """The next step's code: accepted (clocks drift), and newer than the confirming one."""
    return totp.at(time.time() + 30)


def test_totp_enrol_confirm_and_login(owner, client_for):
    client = client_for(owner)
    assert client.get("/api/me/totp/").json() == {"enabled": False}
    totp = enable_totp(client)
    assert client.get("/api/me/totp/").json() == {"enabled": True}
    device = TotpDevice.objects.get(user=owner)
    assert totp.secret not in device.secret_encrypted
    assert decrypt_text(device.secret_encrypted) == totp.secret

    without = login(Client(), "olive", "pw-olive")
    assert without.status_code == 200 and b"authenticator app" in without.content
    wrong = login(Client(), "olive", "pw-olive", otp="000000")
    assert wrong.status_code == 200
    browser = Client()
    assert login(browser, "olive", "pw-olive", otp=next_code(totp)).status_code == 302
    assert "_auth_user_id" in browser.session


def test_a_totp_code_works_once(owner, client_for):
    totp = enable_totp(client_for(owner))
    # The confirming code used up the current step: it cannot log in again.
    assert login(Client(), "olive", "pw-olive", otp=totp.now()).status_code == 200


def test_wrong_codes_count_as_failures(owner, client_for, settings):
    settings.BERTH_LOGIN_MAX_FAILURES = 2
    totp = enable_totp(client_for(owner))
    login(Client(), "olive", "pw-olive", otp="111111")
    login(Client(), "olive", "pw-olive", otp="222222")
    locked = login(Client(), "olive", "pw-olive", otp=next_code(totp))
    assert b"Too many failed logins" in locked.content


def test_unconfirmed_totp_is_not_asked_for(owner, client_for):
    client_for(owner).post("/api/me/totp/")
    assert login(Client(), "olive", "pw-olive").status_code == 302


def test_disable_needs_a_code(owner, client_for):
    client = client_for(owner)
    totp = enable_totp(client)
    assert client.delete("/api/me/totp/", {"code": "123"}, format="json").status_code == 400
    assert client.post("/api/me/totp/").status_code == 409  # on already
    gone = client.delete("/api/me/totp/", {"code": next_code(totp)}, format="json")
    assert gone.status_code == 204
    assert login(Client(), "olive", "pw-olive").status_code == 302


def test_tokens_do_not_need_the_second_factor(owner, client_for):
    enable_totp(client_for(owner))
    created = new_token(client_for(owner))
    assert token_client(created["key"]).get("/api/me/").status_code == 200


# ---- CSRF ---------------------------------------------------------------------------------


def test_session_writes_need_csrf_and_token_writes_do_not(owner, client_for):
    browser = APIClient(enforce_csrf_checks=True)
    browser.get("/login/")  # sets the CSRF cookie, as a page load does
    browser.force_login(owner)
    refused = browser.post("/api/tokens/", {}, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]["message"]
    csrf = browser.cookies["csrftoken"].value
    assert browser.post("/api/tokens/", {}, format="json", HTTP_X_CSRFTOKEN=csrf).status_code == 201
    key = new_token(client_for(owner))["key"]
    with_token = APIClient(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Token {key}")
    assert with_token.post("/api/tokens/", {}, format="json").status_code == 201
