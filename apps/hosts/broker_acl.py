"""Per-host Redis ACL users: an agent connects to the broker as its own host only.

Agents reach the control plane only through Redis (the Celery broker), so the
broker is where a host's identity is enforced. Each joined host gets a Redis
user ``berth-host-<name>`` whose key and channel patterns let it:

- take messages from its own queue ``host.<name>`` (never another host's),
- push to ``control`` without reading it (other hosts' reports stay unseen),
- use what Celery and the agent need around that: kombu's routing tables
  (read; its own binding write), the shared ``unacked`` bookkeeping, task
  results, the broadcast and pidbox channels, log and exec streams.

What this does NOT protect (see the README, "Hosts: joining and broker
credentials"): message *contents* are not signed, so a compromised host can
send reports that name containers or hosts other than its own; the shared
keys above (``unacked``, ``celery-task-meta-*``, ``berth:logs:*``,
``berth:exec:*``) are readable and writable by every host. Dangerous and
admin commands (KEYS, FLUSHALL, CONFIG, ACL, …) and SCAN are denied.
The ``default`` Redis user must be given a password (``requirepass``) for any
of this to matter: otherwise a host can simply connect without a user.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

import redis
from django.conf import settings

from berth.errors import ServiceUnavailable

PREFIX = "berth-host-"
# kombu's Redis transport keeps one list per priority step: "<queue>\x06\x16<n>".
PRIORITY_SEPARATOR = "\x06\x16"
COMMANDS = ("+@all", "-@dangerous", "-scan")


def user_name(host_name: str) -> str:
    return PREFIX + host_name


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def rules(host_name: str, password: str, db: int) -> list[str]:
    """The ``ACL SETUSER`` arguments for the host's user."""
    own_queue = _glob_escape(f"host.{host_name}")
    return [
        "reset",
        "on",
        f">{password}",
        *COMMANDS,
        # keys it reads and writes
        f"~{own_queue}",
        f"~{own_queue}{PRIORITY_SEPARATOR}*",
        f"~_kombu.binding.{own_queue}",
        f"~_kombu.binding_permanent.{own_queue}",
        "~_kombu.binding.broadcast",
        "~_kombu.binding_permanent.broadcast",
        f"~{_glob_escape(f'agent@{host_name}.celery.pidbox')}*",  # its remote-control queue
        "~bcast.*",  # each worker's broadcast queue (fanout goes over pub/sub; lists stay empty)
        "~_kombu.binding.celery.pidbox",
        "~_kombu.binding_permanent.celery.pidbox",
        "~_kombu.binding.reply.celery.pidbox",
        "~_kombu.binding_permanent.reply.celery.pidbox",
        "~_kombu.binding_deadlines",
        # publishing declares the queue again (SADD of its binding); a host could remove
        # the binding, which the next publish by anyone restores
        "~_kombu.binding.control",
        "~_kombu.binding_permanent.control",
        "~unacked",
        "~unacked_index",
        "~unacked_mutex",
        "~celery-task-meta-*",
        "~berth:logs:*",
        "~berth:exec:*",
        # keys it only reads: routing tables
        "%R~_kombu.binding.*",
        # keys it only writes: the control plane's queue
        "%W~control",
        f"%W~control{PRIORITY_SEPARATOR}*",
        # pub/sub: the broadcast fanout, pidbox, task results
        "resetchannels",
        # PSUBSCRIBE is checked literally against these, so kombu's exact patterns are listed.
        f"&/{db}.broadcast/control",
        f"&/{db}.celery.pidbox",
        f"&/{db}.reply.celery.pidbox",
        f"&/{db}.broadcast*",
        f"&/{db}.celery.pidbox*",
        f"&/{db}.reply.celery.pidbox*",
        "&celery-task-meta-*",
        f"&/{db}.celeryev/worker.*",  # worker online/offline/heartbeat (no task events)
    ]


def _admin_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)


def _db() -> int:
    path = urlsplit(settings.REDIS_URL).path.strip("/")
    return int(path) if path.isdecimal() else 0


def provision(host_name: str, password: str) -> None:
    """Create or re-key the host's Redis user (its old password stops working)."""
    try:
        with _admin_client() as client:
            client.execute_command(
                "ACL", "SETUSER", user_name(host_name), *rules(host_name, password, _db())
            )
    except redis.RedisError as exc:
        raise ServiceUnavailable(
            f"could not create the broker user for host {host_name}: {exc}; "
            "create a new join token and join again"
        ) from exc


def remove(host_name: str) -> None:
    try:
        with _admin_client() as client:
            client.execute_command("ACL", "DELUSER", user_name(host_name))
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"could not remove the broker user of {host_name}: {exc}") from exc


def url_for(host_name: str, password: str) -> str:
    """The broker URL the agent uses: the control plane's Redis, as the host's user."""
    broker = settings.BERTH_AGENT_BROKER_URL or settings.REDIS_URL
    parts = urlsplit(broker)
    netloc = parts.hostname or "127.0.0.1"
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    credentials = f"{quote(user_name(host_name), safe='')}:{quote(password, safe='')}"
    return urlunsplit((parts.scheme, f"{credentials}@{netloc}", parts.path, "", ""))
