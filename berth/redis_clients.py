"""The control plane's Redis clients, one per URL and socket timeout, kept for the process.

redis-py's clients are thread-safe and pool their connections: a client made per call
would open a connection per call (per keystroke, on an attached terminal).
"""

from __future__ import annotations

import threading

import redis
from django.conf import settings

CONNECT_TIMEOUT = 5
_clients: dict[tuple[str, float], redis.Redis] = {}
_lock = threading.Lock()


def client(timeout: float = 5) -> redis.Redis:
    """A client of ``settings.REDIS_URL`` whose reads give up after ``timeout`` seconds."""
    key = (settings.REDIS_URL, timeout)
    with _lock:
        found = _clients.get(key)
        if found is None:
            found = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=timeout,
                                         socket_connect_timeout=CONNECT_TIMEOUT)
            _clients[key] = found
        return found
