"""The dashboard's log WebSocket against a real Redis stream: tail, resume after an id
without gaps or duplicates, following new records, access by team."""

import pytest
import redis
from asgiref.sync import async_to_sync, sync_to_async
from channels.routing import URLRouter
from django.conf import settings

from apps.containers import logs
from apps.dashboard.routing import websocket_urlpatterns
from tests.fixtures import make_container
from tests.test_consumers import WebsocketCommunicator

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stream(redis_url):
    """Writes records into a container's real log stream as the agent does; deletes it after."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = []

    def add(container_id: str, *lines: str, stream_name: str = "stdout") -> list[str]:
        keys.append(logs.stream_key(container_id))
        return [
            client.xadd(logs.stream_key(container_id),
                        {"t": "2026-01-02T03:04:05.000000001Z", "s": stream_name, "p": "F",
                         "l": line}).decode()
            for line in lines
        ]

    yield add
    for key in keys:
        client.delete(key)
    client.close()


def communicator(user, container_id: str, query: str) -> WebsocketCommunicator:
    path = f"/ws/containers/{container_id}/logs/"
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["query_string"] = query.encode()
    comm.scope["user"] = user
    return comm


async def lines_until(comm, count: int) -> list[list]:
    """Records until ``count`` came; any other message first fails the test."""
    records = []
    while len(records) < count:
        message = await comm.receive_json_from(timeout=5)
        assert message["type"] == "records", message
        records.extend(message["records"])
    return records


# Each test is one coroutine: the consumer's task lives in the event loop that started it.


def test_tail_then_resume_after_an_id(viewer, team, host, stream):
    container = make_container(team, host, state="running")
    ids = stream(container.id, "one", "two", "three")
    stream(container.id, "oops", stream_name="stderr")

    @async_to_sync
    async def run():
        comm = communicator(viewer, container.id, "tail=2")
        assert (await comm.connect())[0]
        records = await lines_until(comm, 2)
        assert [(r[2], r[3]) for r in records] == [("stdout", "three"), ("stderr", "oops")]
        more = await sync_to_async(stream)(container.id, "four")
        [record] = await lines_until(comm, 1)
        assert record[:4] == [more[0], "2026-01-02T03:04:05.000000001Z", "stdout", "four"]
        await comm.disconnect()
        # A reconnect after the second record gets exactly what followed it.
        again = communicator(viewer, container.id, f"after={ids[1]}")
        assert (await again.connect())[0]
        assert [r[3] for r in await lines_until(again, 3)] == ["three", "oops", "four"]
        await again.disconnect()

    run()


def test_finished_container_ends_the_stream(owner, team, host, stream):
    container = make_container(team, host, state="exited")
    stream(container.id, "last words")

    @async_to_sync
    async def run():
        comm = communicator(owner, container.id, "tail=10")
        assert (await comm.connect())[0]
        assert [r[3] for r in await lines_until(comm, 1)] == ["last words"]
        assert await comm.receive_json_from(timeout=5) == {"type": "end", "state": "exited"}
        await comm.disconnect()

    run()


def test_bad_resume_id_is_an_error_message(owner, team, host):
    container = make_container(team, host, state="running")

    @async_to_sync
    async def run():
        comm = communicator(owner, container.id, "after=yesterday")
        assert (await comm.connect())[0]
        message = await comm.receive_json_from()
        assert message["type"] == "error" and "after" in message["error"]["message"]

    run()


def test_other_teams_and_anonymous_are_refused(outsider, team, host):
    from django.contrib.auth.models import AnonymousUser

    container = make_container(team, host, state="running")
    assert async_to_sync(communicator(outsider, container.id, "").connect)() == (False, 4404)
    anonymous = communicator(AnonymousUser(), container.id, "")
    assert async_to_sync(anonymous.connect)() == (False, 4401)
