"""Container changes as wake-ups for the Docker API's waiters (start, stop, wait, attach).

The control plane publishes every committed container change on one Redis
pub/sub channel (``apps.containers.events.publish_change``). This process
holds one subscription and wakes whoever watches that container, so a waiter
reads the row again the moment it changed instead of polling it. The row
stays the truth: a waiter re-reads it at least every ``REREAD`` seconds, and
every ``POLL`` seconds while the subscription is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator

import redis.asyncio as aioredis
from django.conf import settings

from berth.streams import CONTAINER_CHANGES

log = logging.getLogger(__name__)
REREAD = 1.0
POLL = 0.05
RETRY = 1.0
SUBSCRIBE_TIMEOUT = 5.0


class Watch:
    """One waiter's view of one container: set on each change; ``last`` is its newest
    event (what a removed container's row can no longer tell, such as its exit code)."""

    def __init__(self, container_id: str, source: Changes):
        self.container_id = container_id
        self.source = source
        self.changed = asyncio.Event()
        self.last: dict | None = None

    async def wait(self, seconds: float) -> None:
        """Until the container changes, or ``seconds`` (shortened while unsubscribed)."""
        limit = REREAD if self.source.subscribed else POLL
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), max(0.0, min(seconds, limit)))
        self.changed.clear()


class Changes:
    def __init__(self) -> None:
        self.watches: dict[str, set[Watch]] = {}
        self.subscribed = False
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._ready = asyncio.Event()
        self._task = asyncio.ensure_future(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), SUBSCRIBE_TIMEOUT)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        self.subscribed = False

    @contextlib.contextmanager
    def watch(self, container_id: str) -> Iterator[Watch]:
        """Watch from before the first read of the row, so no change slips between."""
        watch = Watch(container_id, self)
        self.watches.setdefault(container_id, set()).add(watch)
        try:
            yield watch
        finally:
            waiting = self.watches.get(container_id, set())
            waiting.discard(watch)
            if not waiting:
                self.watches.pop(container_id, None)

    async def _listen(self) -> None:
        while True:
            client = aioredis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CONTAINER_CHANGES)
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self._subscribed(True)
                        elif message["type"] == "message":
                            self._deliver(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis went away: poll until it is back
                log.warning("container changes unavailable (%s); polling", exc)
            finally:
                self._subscribed(False)
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(RETRY)

    def _subscribed(self, value: bool) -> None:
        self.subscribed = value
        self._ready.set()
        self._wake_all()  # a waiter mid-wait re-reads with the new interval

    def _deliver(self, data: bytes) -> None:
        try:
            event = json.loads(data)
            container_id = event["id"]
        except (ValueError, TypeError, KeyError):
            return
        for watch in self.watches.get(container_id, ()):
            watch.last = event
            watch.changed.set()

    def _wake_all(self) -> None:
        for waiting in self.watches.values():
            for watch in waiting:
                watch.changed.set()


changes = Changes()
