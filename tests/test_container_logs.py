"""Logs from the Redis stream ``berth:logs:<id>``: tail, time and stream filters, the
agent fallback, following, and Server-Sent Events with exact resume and gap events."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async

from apps.containers import logs, services
from apps.containers.choices import State
from apps.containers.models import Container
from apps.containers.services import apply_report
from tests.fixtures import make_container, read_body

pytestmark = pytest.mark.django_db

T0 = "2026-03-01T10:00:00.000000001Z"
TIMES = [f"2026-03-01T10:00:0{second}.{second}00000000Z" for second in range(5)]


@pytest.fixture
def container(team, host):
    return make_container(team, host)


@pytest.fixture
def records(container, log_stream):
    """Five records, one a second from 10:00:00: two on stderr, one partial line."""
    ids = []
    for index, (line, stream, partial) in enumerate(
        [
            ("one", "stdout", "F"),
            ("two", "stderr", "F"),
            ("three-", "stdout", "P"),
            ("continued", "stdout", "F"),
            ("five", "stderr", "F"),
        ]
    ):
        ids.append(log_stream.add(container.id, line, s=stream, p=partial, t=TIMES[index]))
    return ids


@pytest.fixture
def no_agent(monkeypatch):
    """Fails the test if the agent is asked for logs."""

    def refuse(*args, **kwargs):
        raise AssertionError("the agent was asked although the stream has the logs")

    monkeypatch.setattr(services, "call_host", refuse)


@pytest.fixture
def fast_follow(monkeypatch):
    monkeypatch.setattr(logs, "BLOCK_MS", 50)


def get_logs(client, container, query=""):
    return client.get(f"/api/containers/{container.id}/logs/?{query}")


def parse_events(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = json.loads(value) if name == "data" else value
        if fields:
            events.append(fields)
    return events


def async_client(user):
    from django.test import AsyncClient

    client = AsyncClient()
    client.force_login(user)
    return client


# ---- reading ------------------------------------------------------------------------------


def test_logs_come_from_the_stream(owner, container, records, client_for, no_agent):
    response = get_logs(client_for(owner), container)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Berth-Log-Source"] == "stream"
    assert response.content == b"one\ntwo\nthree-continued\nfive\n"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("tail=2", b"continued\nfive\n"),
        ("tail=0", b""),
        ("tail=99", b"one\ntwo\nthree-continued\nfive\n"),
        ("stderr=0", b"one\nthree-continued\n"),
        ("stdout=0", b"two\nfive\n"),
        ("stdout=0&tail=1", b"five\n"),
        ("since=2026-03-01T10:00:01.1Z", b"two\nthree-continued\nfive\n"),
        ("since=2026-03-01T10:00:01.1Z&until=2026-03-01T10:00:03.3Z", b"two\nthree-continued\n"),
        ("until=2026-03-01T11:00:00%2B01:00", b"one\n"),  # a zone offset: 10:00:00 UTC
        ("since=1772359202&stdout=0", b"five\n"),  # epoch seconds (10:00:02 UTC)
        ("since=1772359202.2", b"three-continued\nfive\n"),
        ("since=10m", b""),  # a duration back from now: these are older
    ],
)
def test_tail_time_and_stream_filters(
    owner, container, records, client_for, no_agent, query, expected
):
    response = get_logs(client_for(owner), container, query)
    assert response.status_code == 200, response.content
    assert response.content == expected


def test_timestamps_prefix_the_record_time(owner, container, records, client_for, no_agent):
    response = get_logs(client_for(owner), container, "timestamps=1&tail=1")
    assert response.content == f"{TIMES[4]} five\n".encode()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("stdout=0&stderr=0", "stdout"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("since=2026-03-02T00:00:00Z&until=2026-03-01T00:00:00Z", "until"),
        ("tail=-1", "tail"),
        ("follow=maybe", "follow"),
    ],
)
def test_bad_log_queries_are_400(owner, container, client_for, query, field):
    response = get_logs(client_for(owner), container, query)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()["error"]["fields"]


def test_empty_stream_falls_back_to_the_agent(
    owner, container, log_stream, client_for, monkeypatch
):
    calls = []

    def fake_call_host(target, task, args, timeout):
        calls.append((task, args))
        return "from the host's files\n"

    monkeypatch.setattr(services, "call_host", fake_call_host)
    response = get_logs(client_for(owner), container, "tail=5&timestamps=1")
    assert response.content == b"from the host's files\n"
    assert response["X-Berth-Log-Source"] == "agent"
    assert calls == [("agent.container_logs", [container.id, 5, True])]
    # A filter the host's files cannot apply: the (empty) stream's answer stands.
    assert get_logs(client_for(owner), container, "stderr=0").content == b""
    assert len(calls) == 1


def test_unreachable_redis_falls_back_to_the_agent(
    owner, container, client_for, settings, monkeypatch
):
    monkeypatch.setattr(services, "call_host", lambda *args: "files\n")
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    logs._clients.clear()
    try:
        assert get_logs(client_for(owner), container).content == b"files\n"
        filtered = get_logs(client_for(owner), container, "since=1h")
        assert filtered.status_code == 503
        assert "log stream is unreachable" in filtered.json()["error"]["message"]
    finally:
        logs._clients.clear()


def test_logs_of_a_container_on_an_offline_host_still_come_from_the_stream(
    owner, container, records, client_for, no_agent
):
    from apps.hosts.choices import HostStatus
    from apps.hosts.models import Host

    Host.objects.filter(pk=container.host_id).update(status=HostStatus.OFFLINE)
    assert get_logs(client_for(owner), container, "tail=1").content == b"five\n"


# ---- following ----------------------------------------------------------------------------


def test_follow_streams_new_records_until_the_container_exited(
    owner, container, records, log_stream, fast_follow, no_agent
):
    client = async_client(owner)

    async def scenario():
        response = await client.get(f"/api/containers/{container.id}/logs/?follow=1&tail=1")
        assert response.is_async and response["X-Berth-Log-Source"] == "stream"
        body = response.streaming_content.__aiter__()
        chunks = [await body.__anext__()]  # what was there: the tail
        log_stream.add(container.id, "six")
        chunks.append(await asyncio.wait_for(body.__anext__(), 5))
        log_stream.add(container.id, "seven", s="stderr")
        await sync_to_async(apply_report)(container.id, {"seq": 5, "state": "exited"})
        log_stream.add(container.id, "last words")  # shipped just after the exit report
        chunks.append(await read_body(body))
        return b"".join(chunks)

    assert async_to_sync(scenario)() == b"five\nsix\nseven\nlast words\n"


def test_follow_applies_the_filters(owner, container, records, log_stream, fast_follow):
    client = async_client(owner)

    async def scenario():
        response = await client.get(
            f"/api/containers/{container.id}/logs/?follow=1&stdout=0&timestamps=1"
        )
        log_stream.add(container.id, "quiet", t=T0)
        log_stream.add(container.id, "loud", s="stderr", t=T0)
        await sync_to_async(Container.objects.filter(pk=container.pk).update)(state=State.EXITED)
        return await read_body(response.streaming_content)

    assert async_to_sync(scenario)() == (f"{TIMES[1]} two\n{TIMES[4]} five\n{T0} loud\n".encode())


def test_follow_of_an_exited_container_ends_after_its_records(
    owner, team, host, log_stream, fast_follow
):
    container = make_container(team, host, state=State.EXITED)
    log_stream.add(container.id, "done")
    client = async_client(owner)

    async def scenario():
        response = await client.get(f"/api/containers/{container.id}/logs/?follow=1")
        return await read_body(response.streaming_content)

    assert async_to_sync(scenario)() == b"done\n"


def test_follow_of_an_exited_container_without_a_stream_asks_the_agent(
    owner, team, host, client_for, log_stream, monkeypatch
):
    container = make_container(team, host, state=State.EXITED)
    monkeypatch.setattr(services, "call_host", lambda *args: "old\n")
    response = get_logs(client_for(owner), container, "follow=1")
    assert not response.streaming and response.content == b"old\n"


def test_follow_of_a_running_container_waits_for_its_first_record(
    owner, container, log_stream, fast_follow, no_agent
):
    client = async_client(owner)

    async def scenario():
        response = await client.get(f"/api/containers/{container.id}/logs/?follow=1")
        body = response.streaming_content.__aiter__()
        pending = asyncio.ensure_future(body.__anext__())
        await asyncio.sleep(0.2)
        assert not pending.done()
        log_stream.add(container.id, "first")
        first = await asyncio.wait_for(pending, 5)
        await body.aclose()  # the client goes away
        return first

    assert async_to_sync(scenario)() == b"first\n"


# ---- Server-Sent Events -------------------------------------------------------------------


def events_of(client, container, query="", **headers):
    response = client.get(f"/api/containers/{container.id}/logs/events/?{query}", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    return parse_events(b"".join(response))


def collect_events(user, container, query="", headers=None) -> list[dict]:
    """Through the ASGI path (an async body), as uvicorn serves it."""
    client = async_client(user)

    async def scenario():
        response = await client.get(
            f"/api/containers/{container.id}/logs/events/?{query}", headers=headers or {}
        )
        assert response.status_code == 200, response.content
        assert response["Content-Type"] == "text/event-stream"
        return await read_body(response.streaming_content)

    return parse_events(async_to_sync(scenario)())


def test_events_carry_stream_ids_and_records(owner, container, records, no_agent):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    events = collect_events(owner, container)
    assert [event.get("id") for event in events] == [*records, None]
    assert events[0]["data"] == {"t": TIMES[0], "s": "stdout", "p": "F", "l": "one"}
    assert events[2]["data"]["p"] == "P"
    assert events[-1] == {"event": "end", "data": {"state": "exited"}}


def test_events_accept_an_event_source(owner, container, records):
    events = collect_events(owner, container, "follow=0", headers={"Accept": "text/event-stream"})
    assert len(events) == len(records) + 1


def test_resume_after_last_event_id_gives_exactly_the_rest(owner, container, records, no_agent):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    events = collect_events(owner, container, headers={"Last-Event-ID": records[1]})
    assert [event.get("id") for event in events] == [records[2], records[3], records[4], None]
    # ?after does the same; a Last-Event-ID (sent by a reconnecting EventSource) wins over it.
    by_query = collect_events(owner, container, f"after={records[3]}")
    assert [event.get("id") for event in by_query] == [records[4], None]
    both = collect_events(
        owner, container, f"after={records[0]}", headers={"Last-Event-ID": records[3]}
    )
    assert [event.get("id") for event in both] == [records[4], None]
    at_end = collect_events(owner, container, headers={"Last-Event-ID": records[4]})
    assert at_end == [{"event": "end", "data": {"state": "exited"}}]


def test_resume_while_following_has_no_gaps_or_duplicates(
    owner, container, log_stream, fast_follow, no_agent
):
    """A reader drops after some events and reconnects with the last id it saw."""
    ids = [log_stream.add(container.id, f"line {index}") for index in range(3)]
    client = async_client(owner)

    async def first_connection():
        response = await client.get(f"/api/containers/{container.id}/logs/events/")
        body = response.streaming_content.__aiter__()
        seen = parse_events(await body.__anext__())
        await body.aclose()
        return seen

    seen = async_to_sync(first_connection)()
    assert [event["id"] for event in seen] == ids
    # Written while nobody was connected.
    ids += [log_stream.add(container.id, f"line {index}") for index in range(3, 6)]

    async def second_connection():
        response = await client.get(
            f"/api/containers/{container.id}/logs/events/", headers={"Last-Event-ID": ids[2]}
        )
        body = response.streaming_content.__aiter__()
        chunks = [await body.__anext__()]
        ids.append(log_stream.add(container.id, "line 6"))
        chunks.append(await asyncio.wait_for(body.__anext__(), 5))
        await sync_to_async(Container.objects.filter(pk=container.pk).update)(state=State.EXITED)
        chunks.append(await read_body(body))
        return parse_events(b"".join(chunks))

    resumed = async_to_sync(second_connection)()
    assert [event["data"]["l"] for event in resumed[:-1]] == [f"line {i}" for i in range(3, 7)]
    assert [event["id"] for event in resumed[:-1]] == ids[3:]
    assert resumed[-1]["event"] == "end"


def test_gap_event_when_the_readers_entries_were_trimmed(owner, container, log_stream, no_agent):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    ids = [
        log_stream.add(
            container.id, f"n{index}", entry_id=f"{1000 + index}-0", maxlen=5, approximate=False
        )
        for index in range(10)
    ]  # the stream keeps ids[5:]
    events = collect_events(owner, container, headers={"Last-Event-ID": ids[2]})
    assert events[0] == {"event": "gap", "data": {"after": ids[2], "first": ids[5]}}
    assert [event.get("id") for event in events[1:]] == [*ids[5:], None]
    # A reader still inside what the stream holds gets no gap.
    events = collect_events(owner, container, headers={"Last-Event-ID": ids[6]})
    assert [event.get("id") for event in events] == [*ids[7:], None]


def test_no_gap_when_nothing_was_ever_trimmed(owner, container, log_stream):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    ids = [log_stream.add(container.id, "x", entry_id=f"{2000 + i}-0") for i in range(2)]
    events = collect_events(owner, container, headers={"Last-Event-ID": "1-0"})
    assert [event.get("id") for event in events] == [*ids, None]


def test_an_id_from_another_stream_starts_over_with_a_gap(owner, container, records):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    events = collect_events(owner, container, headers={"Last-Event-ID": "99999999999999-0"})
    assert events[0]["event"] == "gap"
    assert [event.get("id") for event in events[1:]] == [*records, None]


def test_events_take_the_same_filters(owner, container, records):
    Container.objects.filter(pk=container.pk).update(state=State.EXITED)
    events = collect_events(owner, container, "stdout=0&tail=1")
    assert [event["data"] for event in events] == [
        {"t": TIMES[4], "s": "stderr", "p": "F", "l": "five"},
        {"state": "exited"},
    ]


@pytest.mark.parametrize(
    ("query", "headers", "field"),
    [
        ("", {"HTTP_LAST_EVENT_ID": "soon"}, "Last-Event-ID"),
        ("after=12", {}, "after"),
        ("since=never", {}, "since"),
    ],
)
def test_bad_resume_ids_are_400(owner, container, client_for, query, headers, field):
    response = client_for(owner).get(
        f"/api/containers/{container.id}/logs/events/?{query}", **headers
    )
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert field in response.json()["error"]["fields"]


def test_events_without_redis_are_503(owner, container, client_for, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    logs._clients.clear()
    try:
        response = client_for(owner).get(f"/api/containers/{container.id}/logs/events/")
    finally:
        logs._clients.clear()
    assert response.status_code == 503


def test_non_following_events_work_under_wsgi_too(owner, container, records, client_for):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Django collects an async body under WSGI
        events = events_of(client_for(owner), container, "follow=0&tail=2")
    assert [event.get("id") for event in events] == [records[3], records[4], None]
    assert events[-1] == {"event": "end", "data": {"state": "running"}}


# ---- the module on its own ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-03-01T10:00:00Z", 1772359200 * 10**9),
        ("2026-03-01T10:00:00.123456789Z", 1772359200 * 10**9 + 123456789),
        ("2026-03-01T11:00:00+01:00", 1772359200 * 10**9),
        ("2026-03-01T10:00:00", 1772359200 * 10**9),
        ("1772359200", 1772359200 * 10**9),
        ("1772359200.5", 1772359200 * 10**9 + 5 * 10**8),
    ],
)
def test_parse_time(text, ns):
    assert logs.parse_time(text, "since") == ns


def test_parse_durations():
    now = 10_000 * 10**9
    assert logs.parse_time("1h30m", "since", now) == now - 5400 * 10**9
    assert logs.parse_time("250ms", "since", now) == now - 250 * 10**6
