"""Shared fixtures for the control-plane tests (import them from tests/conftest.py).

Personas: ``owner``, ``operator`` and ``viewer`` of team ``alpha``;
``outsider`` owns team ``beta``; ``admin`` is a superuser in no team.
Messages to agents go to a real Redis (the ``redis_url`` fixture in conftest).
"""

from __future__ import annotations

import base64
import json
import secrets

import pytest

# Django modules are imported inside the functions: this file may be loaded as a
# plugin before pytest-django has configured Django.

BUSYBOX = "docker.io/library/busybox:latest"


_HASHES: dict[str, str] = {}


def _hashed(password: str) -> str:
    """Password hashing is slow on purpose; each test password is hashed once per session."""
    from django.contrib.auth.hashers import make_password

    if password not in _HASHES:
        _HASHES[password] = make_password(password)
    return _HASHES[password]


def make_user(username: str, team=None, role: str | None = None, **extra):
    """A user whose password is ``pw-<username>``, optionally a member of ``team``."""
    from apps.accounts.models import User
    from apps.teams.choices import Role
    from apps.teams.models import Membership

    user = User.objects.create(username=username, password=_hashed("pw-" + username), **extra)
    if team is not None:
        Membership.objects.create(team=team, user=user, role=role or Role.VIEWER)
    return user


def make_host(name: str | None = None, *, online: bool = True, images=(BUSYBOX,)):
    from django.utils import timezone

    from apps.hosts.choices import HostStatus
    from apps.hosts.models import Host
    from apps.images.models import Image

    host = Host.objects.create(
        name=name or f"test-{secrets.token_hex(4)}",
        status=HostStatus.ONLINE if online else HostStatus.OFFLINE,
        last_heartbeat=timezone.now(),
        cpus=2,
        memory_bytes=2**30,
    )
    for reference in images:
        Image.objects.create(host=host, reference=reference, digest="sha256:" + "0" * 64)
    return host


@pytest.fixture
def team(db):
    from apps.teams.models import Team

    return Team.objects.create(name="Alpha", slug="alpha")


@pytest.fixture
def other_team(db):
    from apps.teams.models import Team

    return Team.objects.create(name="Beta", slug="beta")


@pytest.fixture
def owner(team):
    from apps.teams.choices import Role

    return make_user("olive", team, Role.OWNER)


@pytest.fixture
def operator(team):
    from apps.teams.choices import Role

    return make_user("oscar", team, Role.OPERATOR)


@pytest.fixture
def viewer(team):
    from apps.teams.choices import Role

    return make_user("vera", team, Role.VIEWER)


@pytest.fixture
def outsider(other_team):
    from apps.teams.choices import Role

    return make_user("otto", other_team, Role.OWNER)


@pytest.fixture
def admin(db):
    return make_user("root", is_staff=True, is_superuser=True)


@pytest.fixture
def client_for():
    """``client_for(user)``: an API client authenticated as ``user`` (None: anonymous)."""

    from rest_framework.test import APIClient

    def build(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.force_authenticate(user)
        return client

    return build


@pytest.fixture
def host(db):
    return make_host()


@pytest.fixture
def broker(redis_url):
    """A Redis client on the broker; deletes the host queues a test filled."""
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    for pattern in ("host.test-*", "_kombu.binding.host.test-*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    client.close()


def queued_messages(broker, host_name: str) -> list[dict]:
    """Decode the Celery messages waiting on ``host.<name>``, oldest first.

    Kombu's Redis transport LPUSHes each message as JSON with a base64 body
    holding ``[args, kwargs, embed]`` (Celery message protocol 2).
    """
    from berth.celery import host_queue_name

    messages = []
    for raw in reversed(broker.lrange(host_queue_name(host_name), 0, -1)):
        envelope = json.loads(raw)
        args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs})
    return messages


@pytest.fixture
def memory_layer(settings):
    """An in-memory channel layer, so tests can read what was broadcast."""
    from channels.layers import get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


@pytest.fixture
def transfer_dir(settings, tmp_path):
    """Archives go to a private directory (settings.BERTH_TRANSFER_DIR)."""
    directory = tmp_path / "transfers"
    directory.mkdir()
    settings.BERTH_TRANSFER_DIR = directory
    return directory


@pytest.fixture
def fake_agent(broker, monkeypatch):
    """Answers agent RPCs through the real broker and result backend.

    ``fake_agent["agent.image_tag"] = {...}`` makes the call return that value;
    an exception instance makes it fail the way an agent's exception does
    (Celery stores it by class name and rebuilds it on ``.get()``). The
    message still lands on ``host.<name>`` like any other.
    """
    from apps.hosts import services as host_services

    celery_app = host_services.celery_app
    answers: dict = {}
    real_send_task = celery_app.send_task

    def send_task(name, *args, **kwargs):
        result = real_send_task(name, *args, **kwargs)
        if name in answers:
            answer = answers[name]
            if isinstance(answer, BaseException):
                celery_app.backend.mark_as_failure(result.id, answer)
            else:
                celery_app.backend.mark_as_done(result.id, answer)
        return result

    monkeypatch.setattr(celery_app, "send_task", send_task)
    return answers


def agent_exception(name: str, message: str) -> Exception:
    """An exception of class ``name`` from a module the control plane never imports."""
    cls = type(name, (Exception,), {"__module__": "workers.agent.not_imported_here"})
    return cls(message)


def image_report(reference: str, **extra) -> dict:
    """An image report as agents send it (docs/agent-protocol.md)."""
    report = {
        "reference": reference,
        "digest": "sha256:" + "d" * 64,
        "image_id": "sha256:" + "e" * 64,
        "size": 1234,
        "created": "2024-05-06T07:08:09Z",
        "config": {"Cmd": ["sh"]},
        "repo_digests": [],
        "history": [{"created_by": "ADD rootfs.tar /"}],
    }
    report.update(extra)
    return report


def make_container(team, host, *, name="web", state="running", **fields):
    """A container row as an applied report would leave it (no message is sent)."""
    from apps.containers.models import Container

    image = host.images.get(reference=BUSYBOX)
    return Container.objects.create(
        name=name,
        team=team,
        host=host,
        image=image,
        image_reference=BUSYBOX,
        state=state,
        **fields,
    )


@pytest.fixture
def log_stream(redis_url):
    """``log_stream.add(container_id, line, ...)`` appends a record as the agent does.

    Records go to the real stream ``berth:logs:<id>`` on settings.REDIS_URL;
    the streams a test wrote are deleted afterwards.
    """
    import redis

    from apps.containers.logs import stream_key

    class Streams:
        def __init__(self):
            self.client = redis.Redis.from_url(redis_url)
            self.keys: set[str] = set()

        def add(self, container_id, line, *, s="stdout", p="F", t=None, entry_id="*", **xadd):
            key = stream_key(container_id)
            self.keys.add(key)
            fields = {"t": t or now_rfc3339(), "s": s, "p": p, "l": line}
            return self.client.xadd(key, fields, id=entry_id, **xadd).decode()

        def exists(self, container_id) -> bool:
            return bool(self.client.exists(stream_key(container_id)))

    streams = Streams()
    yield streams
    for key in streams.keys:
        streams.client.delete(key)
    streams.client.close()


def now_rfc3339(offset_seconds: float = 0.0) -> str:
    """An RFC 3339 time with nanoseconds, as the agent writes ``t``."""
    import time

    ns = time.time_ns() + int(offset_seconds * 1e9)
    seconds, nanos = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


async def read_body(chunks, timeout: float = 15.0) -> bytes:
    """The rest of an async response body; fails instead of hanging when it never ends."""
    import asyncio

    async def collect() -> bytes:
        return b"".join([chunk async for chunk in chunks])

    return await asyncio.wait_for(collect(), timeout)
