"""Container logs from the Redis stream the agent fills (docs/agent-protocol.md).

The agent appends every record of a container to ``berth:logs:<id>`` with the
fields ``t`` (RFC 3339, nanoseconds), ``s`` (stdout/stderr), ``p`` (F full
line, P partial) and ``l`` (the line). Entry ids only grow and no record
appears twice, so a reader that remembers the last id it saw resumes
exactly after it: no gaps, no duplicates.

Readers only read (XRANGE, XREVRANGE, XREAD), so they never hold the agent
up. ``read`` is synchronous (the first part of every answer, so a broken
Redis is still an HTTP error); ``follow`` is an async generator for
streaming responses under ASGI, cancelled when the client goes away.
"""

from __future__ import annotations

import calendar
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from django.conf import settings

from berth.errors import InvalidInput

log = logging.getLogger(__name__)

STREAM_PREFIX = "berth:logs:"
BATCH = 1000  # entries per XRANGE/XREAD call
BLOCK_MS = 1000  # a follower re-checks the container at least this often
CONNECT_TIMEOUT = 5
SOCKET_TIMEOUT = 30
REDIS_ERRORS = (redis.RedisError, OSError)
REMOVED_STREAM_GRACE = 30  # seconds a removed container's log stream stays readable

AGENT_FIELDS = [b"t", b"s", b"p", b"l"]  # the order workers/agent/logship.py writes them in
ENTRY_ID = re.compile(r"(\d+)-(\d+)")
RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9})\d*)?"
    r"([Zz]|[+-]\d\d:?\d\d)?"
)
EPOCH = re.compile(r"(\d{1,12})(?:\.(\d{1,9})\d*)?")
DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
DURATION_NS = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}


class LogStoreUnavailable(Exception):
    """Redis could not be read."""


def stream_key(container_id: str) -> str:
    return f"{STREAM_PREFIX}{container_id}"


# ---- records and queries ------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    id: str
    t: str
    s: str
    p: str
    l: str  # noqa: E741 - the protocol's field name

    @classmethod
    def from_entry(cls, entry_id, fields: dict | list) -> Record:
        """From an entry as redis-py parses it (a dict) or as Redis sends it (a flat
        field/value list, which the log readers ask for: parsing it is most of a read)."""
        if isinstance(fields, list):
            if fields[0::2] == AGENT_FIELDS:  # as the agent writes them: no lookups
                return cls(entry_id.decode(), fields[1].decode("utf-8", "replace"),
                           fields[3].decode("utf-8", "replace"),
                           fields[5].decode("utf-8", "replace") or "F",
                           fields[7].decode("utf-8", "replace"))
            fields = dict(zip(fields[::2], fields[1::2], strict=True))

        def text(name: str) -> str:
            value = fields.get(name.encode(), fields.get(name, b""))
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        return cls(id=ident, t=text("t"), s=text("s"), p=text("p") or "F", l=text("l"))

    @property
    def ns(self) -> int | None:
        return rfc3339_ns(self.t)

    def text(self, timestamps: bool = False) -> str:
        """As the host's log reader prints it: a partial record gets no newline."""
        end = "" if self.p == "P" else "\n"
        return f"{self.t} {self.l}{end}" if timestamps else f"{self.l}{end}"

    def as_json(self) -> dict[str, str]:
        return {"t": self.t, "s": self.s, "p": self.p, "l": self.l}


@dataclass(frozen=True)
class LogQuery:
    """What to read: the last ``tail`` records, a time window, which streams."""

    tail: int | None = None
    since: int | None = None  # ns since the epoch, inclusive
    until: int | None = None  # ns since the epoch, inclusive
    timestamps: bool = False
    stdout: bool = True
    stderr: bool = True
    follow: bool = False

    @property
    def filtered(self) -> bool:
        """True when records are filtered by time or stream (the host's files cannot be)."""
        return self.since is not None or self.until is not None or not (self.stdout and self.stderr)

    def matches(self, record: Record) -> bool:
        if (record.s == "stdout" and not self.stdout) or (record.s == "stderr" and not self.stderr):
            return False
        if self.since is None and self.until is None:
            return True
        ns = record.ns
        if ns is None:
            return False
        return (self.since is None or ns >= self.since) and (self.until is None or ns <= self.until)


def make_query(
    *,
    tail: int | None = None,
    since: Any = None,
    until: Any = None,
    timestamps: bool = False,
    stdout: bool = True,
    stderr: bool = True,
    follow: bool = False,
) -> LogQuery:
    """A LogQuery from request parameters; InvalidInput names the bad one."""
    if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
        raise InvalidInput("'tail' must be a whole number >= 0", field="tail")
    if not (stdout or stderr):
        raise InvalidInput("choose at least one of stdout and stderr", field="stdout")
    now = time.time_ns()
    since_ns = parse_time(since, "since", now)
    until_ns = parse_time(until, "until", now)
    if since_ns is not None and until_ns is not None and until_ns < since_ns:
        raise InvalidInput("'until' is before 'since'", field="until")
    return LogQuery(tail, since_ns, until_ns, bool(timestamps), bool(stdout), bool(stderr), follow)


def parse_time(value: Any, field_name: str, now_ns: int | None = None) -> int | None:
    """RFC 3339 ("2026-01-02T03:04:05.5Z"), epoch seconds ("1767322245.5") or a duration
    back from now ("10m", "1h30m"), as nanoseconds since the epoch."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if match := EPOCH.fullmatch(text):
        return int(match.group(1)) * 10**9 + int((match.group(2) or "").ljust(9, "0"))
    if DURATION.fullmatch(text):
        total = sum(
            int(float(number) * DURATION_NS[unit]) for number, unit in DURATION_PART.findall(text)
        )
        return (now_ns if now_ns is not None else time.time_ns()) - total
    ns = rfc3339_ns(text)
    if ns is None:
        raise InvalidInput(
            f"'{field_name}' must be an RFC 3339 time, epoch seconds or a duration like "
            f'"10m", got {text!r}',
            field=field_name,
        )
    return ns


def rfc3339_ns(text: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time (no zone: UTC), or None."""
    match = RFC3339.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    try:
        stamp = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except ValueError:
        return None
    offset = 0
    zone = match.group(8)
    if zone and zone not in "Zz":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    seconds = calendar.timegm(stamp.timetuple()) - offset
    return seconds * 10**9 + int((match.group(7) or "").ljust(9, "0"))


def parse_entry_id(value: Any, field_name: str = "after") -> str:
    text = str(value).strip() if value is not None else ""
    if not ENTRY_ID.fullmatch(text):
        raise InvalidInput(
            f"'{field_name}' must be a log entry id like \"1767322245123-0\", got {text!r}",
            field=field_name,
        )
    return text


def _id_key(entry_id) -> tuple[int, int]:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    match = ENTRY_ID.fullmatch(text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


# ---- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Entries after the reader's id were trimmed (or the stream is not the one it read)."""

    after: str
    first: str | None

    def as_json(self) -> dict:
        return {"after": self.after, "first": self.first}


@dataclass(frozen=True)
class Page:
    records: list[Record]
    last_id: str  # a follower continues after this id ("0-0": from the start)
    empty: bool  # the stream has no entries at all (or does not exist)
    gap: Gap | None = field(default=None)


_clients: dict[str, redis.Redis] = {}


def _client() -> redis.Redis:
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=SOCKET_TIMEOUT
        )
        for command in ("XRANGE", "XREVRANGE"):  # raw entries: Record.from_entry reads them
            client.set_response_callback(command, _raw_reply)
        _clients[url] = client
    return client


def _raw_reply(response, **options):
    return response or []


def read(container_id: str, query: LogQuery, after: str | None = None) -> Page:
    """The records the query selects, up to the stream's current end.

    With ``after`` (an entry id) only records after it, and a ``gap`` when
    entries after it are no longer in the stream; ``tail`` is then ignored.
    """
    key = stream_key(container_id)
    try:
        client = _client()
        if after is None:
            if query.tail is not None:
                return _read_tail(client, key, query)
            return _read_forward(client, key, query, None)
        gap, restart = _gap(client, key, after)
        return _read_forward(client, key, query, None if restart else after, gap)
    except REDIS_ERRORS as exc:
        raise LogStoreUnavailable(str(exc)) from exc


def _read_tail(client: redis.Redis, key: str, query: LogQuery) -> Page:
    """Newest first (XREVRANGE) until ``tail`` matching records are found."""
    records: list[Record] = []
    last_id = None
    upper = "+"
    count = BATCH if query.filtered else max(1, min(BATCH, query.tail))
    while True:
        batch = client.xrevrange(key, max=upper, min="-", count=count)
        if last_id is None:
            last_id = batch[0][0].decode() if batch else None
        for entry_id, fields in batch:
            if len(records) >= query.tail:
                break
            record = Record.from_entry(entry_id, fields)
            if query.matches(record):
                records.append(record)
        if len(batch) < count or len(records) >= query.tail:
            break
        upper = "(" + batch[-1][0].decode()
    records.reverse()
    return Page(records, last_id or "0-0", empty=last_id is None)


def _read_forward(
    client: redis.Redis, key: str, query: LogQuery, after: str | None, gap: Gap | None = None
) -> Page:
    records: list[Record] = []
    for page in _forward_pages(client, key, query, after):  # at least one
        records += page.records
    return Page(records, page.last_id, empty=page.empty and after is None, gap=gap)


def _forward_pages(
    client: redis.Redis, key: str, query: LogQuery, after: str | None
) -> Iterator[Page]:
    """A page per XRANGE batch; ``empty`` only while no entry at all was seen."""
    last_id = after or "0-0"
    lower = f"({after}" if after else "-"
    seen = False
    while True:
        batch = client.xrange(key, min=lower, max="+", count=BATCH)
        records = []
        for entry_id, fields in batch:
            record = Record.from_entry(entry_id, fields)
            if query.matches(record):
                records.append(record)
        if batch:
            seen, last_id = True, batch[-1][0].decode()
        yield Page(records, last_id, empty=not seen)
        if len(batch) < BATCH:
            return
        lower = "(" + batch[-1][0].decode()


def pages(container_id: str, query: LogQuery) -> Iterator[Page]:
    """``read(container_id, query)`` a batch at a time: a long log goes out as it is read,
    in bounded memory. Raises LogStoreUnavailable on Redis errors."""
    key = stream_key(container_id)
    try:
        if query.tail is not None:
            yield _read_tail(_client(), key, query)
            return
        yield from _forward_pages(_client(), key, query, None)
    except REDIS_ERRORS as exc:
        raise LogStoreUnavailable(str(exc)) from exc


def _gap(client: redis.Redis, key: str, after: str) -> tuple[Gap | None, bool]:
    """Whether entries after ``after`` were lost; True as well to restart from the beginning.

    The stream only loses entries from its front (MAXLEN trimming): when
    anything was trimmed and the reader's id is older than the first entry
    left, what lay between is gone. An id beyond the last one this stream
    ever generated belongs to another stream (deleted and created again):
    the reader starts over.
    """
    try:
        info = client.xinfo_stream(key)
    except redis.ResponseError:  # no such key: nothing was lost that anyone can tell
        return None, False
    first = info.get("first-entry")
    first_id = first[0].decode() if first else None
    last_generated = info.get("last-generated-id")
    if last_generated is not None and _id_key(after) > _id_key(last_generated):
        return Gap(after, first_id), True
    trimmed = info.get("entries-added", info.get("length", 0) + 1) > info.get("length", 0)
    deleted = info.get("max-deleted-entry-id")
    if (first_id and trimmed and _id_key(after) < _id_key(first_id)) or (
        deleted is not None and _id_key(after) < _id_key(deleted)
    ):
        return Gap(after, first_id), False
    return None, False


async def follow(
    container_id: str,
    last_id: str,
    query: LogQuery,
    logs_may_grow: Callable[[], Awaitable[bool]],
) -> AsyncIterator[list[Record]]:
    """Batches of the records after ``last_id`` as they arrive; ``[]`` after each idle second.

    Ends once ``logs_may_grow()`` says the container finished and the stream is
    read to its end (the agent ships a run's last lines before it reports the
    exit), or once ``query.until`` has passed. Cancellation (the client went
    away) stops it at its next await. Raises LogStoreUnavailable on Redis errors.
    """
    key = stream_key(container_id)
    client = aioredis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=BLOCK_MS / 1000 + SOCKET_TIMEOUT,
    )
    try:
        finishing = not await logs_may_grow()
        while True:
            if query.until is not None and time.time_ns() > query.until:
                finishing = True
            try:
                reply = await client.xread(
                    {key: last_id}, count=BATCH, block=None if finishing else BLOCK_MS
                )
            except REDIS_ERRORS as exc:
                raise LogStoreUnavailable(str(exc)) from exc
            entries = reply[0][1] if reply else []
            if entries:
                records = [Record.from_entry(entry_id, fields) for entry_id, fields in entries]
                last_id = records[-1].id
                batch = [record for record in records if query.matches(record)]
                if batch:
                    yield batch
                continue
            if finishing:
                return
            yield []
            finishing = not await logs_may_grow()
    finally:
        await client.aclose()


def delete_stream(container_id: str) -> bool:
    """Drop the container's stream (it was removed) after a short grace, so a reader
    still following it (``docker run --rm``'s attach) gets to its end.
    Redis errors are logged, not raised."""
    try:
        _client().expire(stream_key(container_id), REMOVED_STREAM_GRACE)
    except REDIS_ERRORS as exc:
        log.warning("could not delete the log stream of container %s: %s", container_id, exc)
        return False
    return True
