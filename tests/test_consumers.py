"""The WebSocket consumer: login required, subscriptions checked against team membership,
and events of subscribed teams delivered."""

import json
from dataclasses import asdict

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter

from apps.containers.events import ContainerEvent, send_container_event
from apps.containers.routing import websocket_urlpatterns

# The consumer reads the database from another thread: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


class WebsocketCommunicator(ApplicationCommunicator):
    """A small stand-in for channels.testing's, which needs daphne installed."""

    def __init__(self, application, path, headers=None):
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers or [],
            "subprotocols": [],
            "client": ("127.0.0.1", 40000),
            "server": ("testserver", 80),
        }
        super().__init__(application, scope)

    async def connect(self, timeout=2):
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        return response["type"] == "websocket.accept", response.get("code")

    async def send_json_to(self, data):
        await self.send_input({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive_json_from(self, timeout=2):
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return json.loads(response["text"])

    async def disconnect(self, code=1000, timeout=2):
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def event(team_slug="alpha", state="running") -> ContainerEvent:
    return ContainerEvent(
        id="c" * 64,
        name="web",
        team=team_slug,
        host="node",
        state=state,
        seq=1,
        exit_code=None,
        error="",
        started_at=None,
        finished_at=None,
    )


def run(scenario):
    """Run an async scenario from a sync test (pytest-asyncio is not a dependency)."""
    return async_to_sync(scenario)()


def communicator(user) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/events/")
    comm.scope["user"] = user
    return comm


def test_anonymous_connection_is_refused(memory_layer):
    from django.contrib.auth.models import AnonymousUser

    async def scenario():
        comm = communicator(AnonymousUser())
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert run(scenario) is False


def test_full_asgi_stack_checks_session_and_origin(owner, memory_layer):
    from django.test import Client

    from berth.asgi import application

    browser = Client()
    browser.force_login(owner)
    session = f"sessionid={browser.cookies['sessionid'].value}".encode()

    async def attempt(origin: bytes, cookie: bytes = b"") -> bool:
        headers = [(b"origin", origin)] + ([(b"cookie", cookie)] if cookie else [])
        comm = WebsocketCommunicator(application, "/ws/events/", headers=headers)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    attempt_sync = async_to_sync(attempt)
    assert attempt_sync(b"http://localhost", session) is True
    assert attempt_sync(b"http://localhost") is False  # no session: anonymous
    assert attempt_sync(b"http://evil.example", session) is False  # cross-site


def test_member_receives_events_of_a_subscribed_team(viewer, team, memory_layer):
    async def scenario():
        comm = communicator(viewer)
        assert (await comm.connect())[0]
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        assert await comm.receive_json_from() == {"type": "subscribed", "team": "alpha"}
        await sync_send(team.pk, event())
        received = await comm.receive_json_from()
        await comm.disconnect()
        return received

    received = run(scenario)
    assert received["type"] == "container.state"
    assert received["container"]["state"] == "running"


def test_outsider_cannot_subscribe_to_another_team(outsider, team, memory_layer):
    async def scenario():
        comm = communicator(outsider)
        await comm.connect()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        reply = await comm.receive_json_from()
        await sync_send(team.pk, event())
        nothing = await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return reply, nothing

    reply, nothing = run(scenario)
    assert reply == {
        "type": "error",
        "error": {"code": "not_found", "message": "unknown team 'alpha'"},
    }
    assert nothing is True


def test_unsubscribe_and_bad_messages(owner, team, memory_layer):
    async def scenario():
        comm = communicator(owner)
        await comm.connect()
        await comm.send_json_to({"action": "dance"})
        bad = await comm.receive_json_from()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        await comm.receive_json_from()
        await comm.send_json_to({"action": "unsubscribe", "team": "alpha"})
        left = await comm.receive_json_from()
        await sync_send(team.pk, event())
        nothing = await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return bad, left, nothing

    bad, left, nothing = run(scenario)
    assert bad["type"] == "error" and bad["error"]["code"] == "bad_request"
    assert left == {"type": "unsubscribed", "team": "alpha"}
    assert nothing is True


def test_site_admin_may_subscribe_to_any_team(admin, team, memory_layer):
    async def scenario():
        comm = communicator(admin)
        await comm.connect()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        reply = await comm.receive_json_from()
        await comm.disconnect()
        return reply

    assert run(scenario) == {"type": "subscribed", "team": "alpha"}


async def sync_send(team_id, container_event):
    """send_container_event is sync (it is called from Django code); call it off the loop."""
    from asgiref.sync import sync_to_async

    assert await sync_to_async(send_container_event)(team_id, container_event)


def test_events_travel_through_redis(owner, team, redis_url, settings):
    """The production layer (channels_redis on REDIS_URL), end to end."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": "berth-test"},
        }
    }

    async def scenario():
        comm = communicator(owner)
        await comm.connect()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        await comm.receive_json_from()
        await sync_send(team.pk, event(state="exited"))
        received = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return received

    assert run(scenario)["container"]["state"] == "exited"


def operation_event(status="running"):
    from apps.operations.events import OperationEvent

    return OperationEvent(
        id="o" * 32,
        kind="pull",
        status=status,
        team="alpha",
        host="node",
        target="docker.io/library/busybox:latest",
        progress={"done": 1, "total": 2},
        error="",
        created_at=None,
        started_at=None,
        finished_at=None,
    )


def test_subscribing_to_a_team_also_delivers_its_operation_events(viewer, team, memory_layer):
    from asgiref.sync import sync_to_async

    from apps.operations.events import send_operation_event

    async def scenario():
        comm = communicator(viewer)
        await comm.connect()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        await comm.receive_json_from()
        assert await sync_to_async(send_operation_event)(team.pk, operation_event())
        received = await comm.receive_json_from()
        await comm.send_json_to({"action": "unsubscribe", "team": "alpha"})
        await comm.receive_json_from()
        await sync_to_async(send_operation_event)(team.pk, operation_event("succeeded"))
        nothing = await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return received, nothing

    received, nothing = run(scenario)
    assert received == {"type": "operation.state", "operation": asdict(operation_event())}
    assert nothing is True


def test_outsider_gets_no_operation_events_of_another_team(outsider, team, memory_layer):
    from asgiref.sync import sync_to_async

    from apps.operations.events import send_operation_event

    async def scenario():
        comm = communicator(outsider)
        await comm.connect()
        await comm.send_json_to({"action": "subscribe", "team": "alpha"})
        reply = await comm.receive_json_from()
        await sync_to_async(send_operation_event)(team.pk, operation_event())
        nothing = await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return reply, nothing

    reply, nothing = run(scenario)
    assert reply["type"] == "error" and nothing is True
