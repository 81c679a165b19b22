"""The one sender of WebSocket payloads: a typed event, published to a group.

Each kind of event (containers, operations, …) is a frozen dataclass with an
`as_message()`; this module is the only place that touches the channel layer.
Delivery is best effort and never fails the report or request behind it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


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
        async_to_sync(layer.group_send)(group, message)
    except Exception:  # noqa: BLE001 - any layer failure must not break the caller
        log.warning("could not publish %s to %s", event.id, group, exc_info=True)
        return False
    return True


def iso(value) -> str | None:
    return value.isoformat() if value else None
