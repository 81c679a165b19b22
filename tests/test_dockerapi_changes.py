"""The Docker API's wake-ups: container changes published on Redis pub/sub, for real."""

import asyncio
import secrets

from apps.containers.events import ContainerEvent, publish_change
from apps.dockerapi.changes import Changes


def event(container_id: str, state: str, exit_code: int | None = None) -> ContainerEvent:
    return ContainerEvent(id=container_id, name="web", team="t", host="node", state=state,
                          seq=2, exit_code=exit_code, error="", started_at=None,
                          finished_at=None)


def test_a_published_change_wakes_the_watchers_of_that_container_only(redis_url, settings):
    settings.REDIS_URL = redis_url
    watched, other = secrets.token_hex(32), secrets.token_hex(32)

    async def scenario():
        changes = Changes()
        await changes.start()
        try:
            assert changes.subscribed
            with changes.watch(watched) as first, changes.watch(watched) as second, \
                    changes.watch(other) as bystander:
                assert await asyncio.to_thread(publish_change, 1, event(watched, "exited", 3))
                await asyncio.wait_for(first.changed.wait(), 5)
                await asyncio.wait_for(second.changed.wait(), 5)
                assert first.last["state"] == "exited" and first.last["exit_code"] == 3
                assert not bystander.changed.is_set() and bystander.last is None
            assert changes.watches == {}  # every watch let go
        finally:
            await changes.stop()
        assert not changes.subscribed

    asyncio.run(scenario())


def test_a_watch_waits_no_longer_than_asked_when_nothing_changes(redis_url, settings):
    settings.REDIS_URL = redis_url

    async def scenario():
        changes = Changes()
        await changes.start()
        try:
            with changes.watch(secrets.token_hex(32)) as watch:
                loop = asyncio.get_running_loop()
                began = loop.time()
                await watch.wait(0.2)
                assert 0.15 < loop.time() - began < 2
                assert watch.last is None
        finally:
            await changes.stop()

    asyncio.run(scenario())
