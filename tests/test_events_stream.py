"""``/api/events/``: Server-Sent Events of the caller's teams, checked when the stream opens,
fed by the same sender (berth.events.publish) as the WebSocket."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient

from apps.containers.events import ContainerEvent, send_container_event
from apps.operations.events import OperationEvent, send_operation_event

# The view reads the database from another thread: the data must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def container_event(team_slug: str, state="running") -> ContainerEvent:
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


def operation_event(team_slug: str) -> OperationEvent:
    return OperationEvent(
        id="o" * 32,
        kind="pull",
        status="running",
        team=team_slug,
        host="node",
        target="busybox",
        progress={},
        error="",
        created_at=None,
        started_at=None,
        finished_at=None,
    )


def parse(chunk: bytes) -> dict:
    fields = {}
    for line in chunk.decode().splitlines():
        if not line:
            continue
        name, _, value = line.partition(": ")
        fields[name] = json.loads(value) if name == "data" else value
    return fields


def client(user) -> AsyncClient:
    result = AsyncClient()
    result.force_login(user)
    return result


async def next_event(body, timeout=5) -> dict:
    while True:
        chunk = await asyncio.wait_for(body.__anext__(), timeout)
        if not chunk.startswith(b":"):  # keep-alive comments
            return parse(chunk)


def test_members_get_their_teams_events_and_not_others(viewer, team, other_team, memory_layer):
    viewer_client = client(viewer)

    async def scenario():
        response = await viewer_client.get("/api/events/", HTTP_ACCEPT="text/event-stream")
        assert response.status_code == 200
        assert response["Content-Type"] == "text/event-stream"
        body = response.streaming_content.__aiter__()
        assert (await next_event(body)) == {"event": "subscribed", "data": {"teams": ["alpha"]}}
        await sync_to_async(send_container_event)(other_team.pk, container_event("beta"))
        await sync_to_async(send_container_event)(team.pk, container_event("alpha", "exited"))
        await sync_to_async(send_operation_event)(team.pk, operation_event("alpha"))
        first, second = await next_event(body), await next_event(body)
        await body.aclose()
        return first, second

    first, second = async_to_sync(scenario)()
    assert first["event"] == "container.state"
    assert first["data"]["container"]["team"] == "alpha"  # beta's event never arrived
    assert first["data"]["container"]["state"] == "exited"
    assert second["event"] == "operation.state" and second["data"]["operation"]["kind"] == "pull"


def test_asking_for_another_team_is_404_like_a_missing_one(outsider, team, memory_layer):
    outsider_client = client(outsider)

    async def scenario():
        theirs = await outsider_client.get("/api/events/?team=alpha")
        missing = await outsider_client.get("/api/events/?team=nope")
        return theirs, missing

    theirs, missing = async_to_sync(scenario)()
    assert theirs.status_code == 404 and missing.status_code == 404
    assert theirs.json()["error"]["message"] == "unknown team 'alpha'"


def test_site_admin_may_stream_any_team(admin, team, memory_layer):
    admin_client = client(admin)

    async def scenario():
        response = await admin_client.get("/api/events/?team=alpha")
        body = response.streaming_content.__aiter__()
        subscribed = await next_event(body)
        await sync_to_async(send_container_event)(team.pk, container_event("alpha"))
        received = await next_event(body)
        await body.aclose()
        return subscribed, received

    subscribed, received = async_to_sync(scenario)()
    assert subscribed["data"] == {"teams": ["alpha"]}
    assert received["data"]["container"]["name"] == "web"


def test_anonymous_is_401(memory_layer):
    async def scenario():
        return await AsyncClient().get("/api/events/")

    assert async_to_sync(scenario)().status_code == 401


def test_closing_the_stream_leaves_the_groups(team, memory_layer):
    """Django cancels or closes the body's generator when the client goes."""
    from apps.containers.events import team_group
    from apps.teams.api.events import team_events

    async def scenario():
        body = team_events([team], keepalive=0.05)
        assert parse(await body.__anext__())["event"] == "subscribed"
        assert await body.__anext__() == b": keepalive\n\n"
        joined = len(memory_layer.groups.get(team_group(team.pk), {}))
        await body.aclose()
        return joined, len(memory_layer.groups.get(team_group(team.pk), {}))

    assert async_to_sync(scenario)() == (1, 0)
