"""Joining hosts with join tokens, per-host broker users (real Redis ACL), cordon, drain,
and a silent host's containers going ``unknown`` and coming back."""

import secrets
from datetime import timedelta

import pytest
import redis
from django.utils import timezone

from apps.containers.models import Container
from apps.hosts import broker_acl, join
from apps.hosts.models import Host, JoinToken
from berth.errors import Conflict, Forbidden
from tests.fixtures import BUSYBOX, make_container, make_host, queued_messages

pytestmark = pytest.mark.django_db


@pytest.fixture
def acl_users(redis_url, settings):
    """Host names whose Redis ACL users the test creates; deleted afterwards."""
    settings.REDIS_URL = redis_url
    names: list[str] = []
    yield names
    client = redis.Redis.from_url(redis_url)
    for name in names:
        client.execute_command("ACL", "DELUSER", broker_acl.user_name(name))
    client.close()


def new_name() -> str:
    return f"test-join-{secrets.token_hex(3)}"


def token_for(admin, **kwargs) -> str:
    return join.create_join_token(admin, **kwargs)[1]


# ---- join tokens over the API -------------------------------------------------------------


def test_only_site_admins_create_join_tokens(admin, owner, client_for):
    assert client_for(owner).post("/api/join-tokens/", {}, format="json").status_code == 403
    assert client_for(owner).get("/api/join-tokens/").status_code == 403
    assert client_for().get("/api/join-tokens/").status_code == 401
    response = client_for(admin).post("/api/join-tokens/", {"name": "rack 2"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["key"].startswith("bjt_") and body["prefix"] == body["key"][4:12]
    listed = client_for(admin).get("/api/join-tokens/").json()["results"]
    assert [row["prefix"] for row in listed] == [body["prefix"]]
    assert "key" not in listed[0]
    assert body["key"] not in str(JoinToken.objects.values_list())  # stored hashed


def test_join_creates_the_host_and_a_broker_user_limited_to_it(admin, client_for, acl_users):
    name = new_name()
    acl_users.append(name)
    key = token_for(admin)
    response = client_for().post("/api/join/", {"token": key, "name": name}, format="json")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["host"] == name and answer["queue"] == f"host.{name}"
    assert Host.objects.get(name=name).broker_user == broker_acl.user_name(name)

    admin_redis = redis.Redis.from_url(broker_acl.settings.REDIS_URL)
    host_redis = redis.Redis.from_url(answer["broker_url"])
    try:
        admin_redis.lpush(f"host.{name}", b"for-me")
        assert host_redis.rpop(f"host.{name}") == b"for-me"  # its own queue
        host_redis.lpush("control", b"report")  # may report
        assert admin_redis.rpop("control") == b"report"
        denied = [
            lambda: host_redis.lrange("control", 0, -1),  # cannot read others' reports
            lambda: host_redis.rpop("host.test-someone-else"),  # nor others' commands
            lambda: host_redis.lpush("host.test-someone-else", b"x"),
            lambda: host_redis.keys("*"),
            lambda: host_redis.flushdb(),
        ]
        for attempt in denied:
            with pytest.raises(redis.exceptions.NoPermissionError):
                attempt()
    finally:
        admin_redis.delete(f"host.{name}")
        admin_redis.close()
        host_redis.close()


def test_a_token_joins_once(admin, acl_users):
    name = new_name()
    acl_users.append(name)
    key = token_for(admin)
    join.join(key, name)
    with pytest.raises(Forbidden, match="invalid join token"):
        join.join(key, new_name())


@pytest.mark.parametrize("spoil", ["expired", "revoked", "wrong"])
def test_unusable_tokens_are_refused_alike(admin, spoil):
    key = token_for(admin)
    token = JoinToken.objects.get()
    if spoil == "expired":
        JoinToken.objects.filter(pk=token.pk).update(expires=timezone.now() - timedelta(seconds=1))
    elif spoil == "revoked":
        join.revoke_join_token(admin, token)
    else:
        key += "x"
    with pytest.raises(Forbidden, match="^invalid join token$"):
        join.join(key, new_name())
    assert not Host.objects.exists()


def test_an_unbound_token_cannot_take_over_an_existing_host(admin, host):
    key = token_for(admin)
    with pytest.raises(Conflict, match="exists already"):
        join.join(key, host.name)
    assert JoinToken.objects.get().used_at is None  # the refusal did not use it up


def test_a_token_bound_to_a_host_rejoins_it_and_only_it(admin, host, acl_users):
    acl_users.append(host.name)
    key = token_for(admin, host_name=host.name)
    with pytest.raises(Forbidden, match=f"for host {host.name}"):
        join.join(key, "test-other")
    assert join.join(key, host.name).host.pk == host.pk


def test_bad_join_requests_are_400_or_403(client_for):
    client = client_for()
    assert client.post("/api/join/", {}, format="json").status_code == 400
    bad_name = client.post("/api/join/", {"token": "x", "name": "a b"}, format="json")
    assert bad_name.status_code == 400
    refused = client.post("/api/join/", {"token": "nope", "name": "ok"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "invalid_join_token"


def test_join_is_audited(admin, acl_users):
    from apps.audit.models import AuditEvent

    name = new_name()
    acl_users.append(name)
    join.join(token_for(admin), name)
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["host.join_token_create", "host.join"]
    assert AuditEvent.objects.get(action="host.join").details["token_created_by"] == "root"


# ---- cordon and drain ---------------------------------------------------------------------


def test_cordoned_hosts_get_no_new_containers(admin, owner, team, host, client_for):
    other = make_host()
    response = client_for(admin).post(f"/api/hosts/{host.name}/cordon/")
    assert response.status_code == 200 and response.json()["cordoned"] is True
    for _ in range(3):
        created = client_for(owner).post("/api/containers/", {"image": "busybox"}, format="json")
        assert created.json()["host"] == other.name
    named = client_for(owner).post(
        "/api/containers/", {"image": "busybox", "host": host.name}, format="json"
    )
    assert named.status_code == 400 and "cordoned" in named.json()["error"]["message"]
    assert client_for(admin).post(f"/api/hosts/{host.name}/uncordon/").json()["cordoned"] is False


def test_only_site_admins_cordon_and_drain(owner, host, client_for):
    for verb in ("cordon", "uncordon", "drain"):
        assert client_for(owner).post(f"/api/hosts/{host.name}/{verb}/").status_code == 403


def test_drain_cordons_and_stops_what_runs(
    admin, team, host, broker, client_for, django_capture_on_commit_callbacks
):
    running = make_container(team, host, name="a")
    make_container(team, host, name="b", state="exited")
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(admin).post(
            f"/api/hosts/{host.name}/drain/", {"timeout": 3}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["stopped"] == 1 and response.json()["host"]["cordoned"] is True
    sent = queued_messages(broker, host.name)
    assert [(m["task"], m["args"]) for m in sent] == [("agent.container_stop", [running.id, 3])]


# ---- a silent host ------------------------------------------------------------------------


def test_silent_host_goes_offline_and_its_containers_unknown_until_it_reports(
    team, host, broker, settings, django_capture_on_commit_callbacks
):
    from apps.containers.services import apply_report
    from apps.hosts import services

    running = make_container(team, host, name="a", state_seq=5)
    removing = make_container(team, host, name="b", state="removing", state_seq=2)
    Host.objects.filter(pk=host.pk).update(last_heartbeat=timezone.now() - timedelta(hours=1))
    assert services.mark_offline() == 1
    assert Container.objects.get(pk=running.pk).state == "unknown"
    assert Container.objects.get(pk=removing.pk).state == "removing"

    # It comes back: a fresh heartbeat revives it and asks for every state again ...
    with django_capture_on_commit_callbacks(execute=True):
        assert services.record_heartbeat(host.name, timezone.now().timestamp())
    assert Host.objects.get(pk=host.pk).status == "online"
    assert [m["task"] for m in queued_messages(broker, host.name)] == ["agent.broadcast.report_all"]
    # ... and the resent report (same seq as before) puts the truth back; nothing was lost.
    assert apply_report(running.id, {"seq": 5, "state": "running", "pid": 42})
    row = Container.objects.get(pk=running.pk)
    assert row.state == "running" and row.pid == 42
    # An old report still cannot move it backwards.
    assert not apply_report(running.id, {"seq": 4, "state": "exited"})


# ---- signed agent messages ----------------------------------------------------------------


def joined_host(admin, acl_users):
    name = new_name()
    acl_users.append(name)
    answer = join.join(token_for(admin), name)
    answer.host.images.create(reference=BUSYBOX, digest="sha256:" + "0" * 64)
    return answer.host, answer.signing_key


def deliver(task, args, host_name=None, key=None):
    """Run ``task`` as a message from the broker would (an id, and the agent's headers)."""
    from berth import agent_auth

    headers = agent_auth.headers(host_name, key, task.name, args) if key else None
    return task.apply(args=args, headers=headers)


def test_signed_reports_about_the_senders_own_containers_apply(admin, team, acl_users):
    from apps.containers import tasks

    host, key = joined_host(admin, acl_users)
    container = make_container(team, host, state="created")
    deliver(tasks.report_state, [container.id, {"seq": 1, "state": "running"}], host.name, key)
    assert Container.objects.get(pk=container.pk).state == "running"


def test_a_joined_host_cannot_speak_for_another(admin, team, host, acl_users):
    from apps.containers import tasks
    from apps.hosts import tasks as host_tasks

    joined, key = joined_host(admin, acl_users)
    theirs = make_container(team, host, name="theirs", state="running")
    report = [theirs.id, {"seq": 9, "state": "exited", "exit_code": 0}]
    deliver(tasks.report_state, report, joined.name, key)  # signed, but about another host
    deliver(tasks.report_state, report, joined.name, "not-the-key")  # a forged signature
    deliver(tasks.report_state, report, host.name, key)  # claims to be the other host
    assert Container.objects.get(pk=theirs.pk).state == "running"
    # Nor can it heartbeat for the other host, or send unsigned messages about itself.
    stale = timezone.now() - timedelta(hours=1)
    Host.objects.filter(pk__in=[host.pk, joined.pk]).update(last_heartbeat=stale)
    deliver(host_tasks.heartbeat, [host.name, timezone.now().timestamp()], joined.name, key)
    deliver(host_tasks.heartbeat, [joined.name, timezone.now().timestamp()])
    assert set(Host.objects.values_list("last_heartbeat", flat=True)) == {stale}
    deliver(host_tasks.heartbeat, [joined.name, timezone.now().timestamp()], joined.name, key)
    assert Host.objects.get(pk=joined.pk).last_heartbeat > stale


def test_unsigned_messages_still_work_for_hosts_that_never_joined(team, host):
    from apps.containers import tasks

    container = make_container(team, host, state="created")
    deliver(tasks.report_state, [container.id, {"seq": 1, "state": "running"}])
    assert Container.objects.get(pk=container.pk).state == "running"


def test_the_signing_key_is_stored_encrypted(admin, acl_users):
    from berth.crypto import decrypt_text

    host, key = joined_host(admin, acl_users)
    stored = Host.objects.get(pk=host.pk).signing_key_encrypted
    assert key not in stored and decrypt_text(stored) == key


def test_every_agent_message_names_its_subject():
    """A new agent → control message must say which host it is about (apps/hosts/senders.py),
    or a joined host could send it about any other."""
    import re
    from pathlib import Path

    from apps.hosts.senders import SUBJECTS

    sent = set()
    for source in Path("workers/agent").glob("*.py"):
        sent |= set(re.findall(r'\bsend\(\s*"([a-z_]+\.[a-z_.]+)"', source.read_text()))
    assert sent, "no agent messages found: has the reporter's send() moved?"
    assert sent <= SUBJECTS.keys(), sorted(sent - SUBJECTS.keys())
