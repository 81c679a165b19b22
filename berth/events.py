"""The one sender of WebSocket payloads: a typed event, published to a group.

Each kind of event (containers, operations, …) is a frozen dataclass with an
`as_message()`; this module is the only place that touches the channel layer.
Delivery is best effort and never fails the report or request behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Protocol

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)
SEND_TIMEOUT = 5.0


class Event(Protocol):
    id: str

    def as_message(self) -> dict: ...


def publish(group: str, layer_message_type: str, event: Event) -> bool:
    """Send `event` to `group`; False (and a log line) when it could not be sent."""
    layer = get_channel_layer()
    if layer is None:
        return False
    message = {"type": layer_message_type, "event": event.as_message()}
    try:
        sending = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), _loop())
        sending.result(SEND_TIMEOUT)
    except Exception:  # noqa: BLE001 - any layer failure must not break the caller
        log.warning("could not publish %s to %s", event.id, group, exc_info=True)
        return False
    return True


_sender: tuple[int, asyncio.AbstractEventLoop] | None = None
_sender_lock = threading.Lock()


def _loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for sending, on a thread of its own. The layer keeps its
    Redis connections per loop: a loop per send (async_to_sync) would connect each time.
    Per pid, since a Celery worker forks its pool after the parent may have made one."""
    global _sender
    with _sender_lock:
        if _sender is None or _sender[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="events", daemon=True).start()
            _sender = (os.getpid(), loop)
        return _sender[1]


def iso(value) -> str | None:
    return value.isoformat() if value else None
