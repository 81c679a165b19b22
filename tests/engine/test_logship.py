"""Log shipping from the host's files into Redis Streams, with a real Redis."""

import subprocess
import time

import pytest
import redis

from tests.conftest import free_port
from workers.agent.logship import LogShipper, stream_key
from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.runtime import wait_for

pytestmark = pytest.mark.usefixtures("needs_root")


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of the test's own, so it can be stopped and started again."""
    port = free_port()

    def start():
        return subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
                                stdout=subprocess.DEVNULL)

    process = start()
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    assert wait_for(lambda: _pings(client), 10)
    handle = {"url": url, "client": client, "process": process, "start": start}
    yield handle
    handle["process"].kill()
    handle["process"].wait()


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.RedisError:
        return False


def entries(client, container_id):
    return client.xrange(stream_key(container_id))


def run(runtime, script, name="c1", **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": ["sh", "-c", script], **spec})
    runtime.start(name)


def test_every_line_arrives_once_in_order(runtime, private_redis):
    shipper = LogShipper(private_redis["url"], runtime.root)
    shipper.start()
    run(runtime, "seq 1 5000; echo oops >&2")
    shipper.follow("c1")
    client = private_redis["client"]
    assert wait_for(lambda: len(entries(client, "c1")) == 5001, 20)
    rows = entries(client, "c1")
    assert [int(fields[b"l"]) for _, fields in rows[:5000]] == list(range(1, 5001))
    assert rows[-1][1][b"s"] == b"stderr"
    ids = [entry_id for entry_id, _ in rows]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split(b"-"))))


def test_a_restarted_shipper_sends_no_duplicates(runtime, private_redis):
    client = private_redis["client"]
    run(runtime, "seq 1 1000; sleep 0.5; seq 1001 2000")
    first = LogShipper(private_redis["url"], runtime.root)
    first.follow("c1")
    assert wait_for(lambda: first.ship("c1") and len(entries(client, "c1")) >= 1000, 10)
    assert runtime.wait("c1", 20)
    # A new shipper (the agent restarted) resumes from the saved position.
    second = LogShipper(private_redis["url"], runtime.root)
    second.follow("c1")
    lines = [int(fields[b"l"]) for _, fields in entries(client, "c1")]
    assert lines == list(range(1, 2001))


def test_shipping_waits_while_redis_is_down_and_catches_up(runtime, private_redis):
    client = private_redis["client"]
    shipper = LogShipper(private_redis["url"], runtime.root)
    shipper.start()
    run(runtime, "i=0; while [ $i -lt 300 ]; do echo $i; i=$((i+1)); sleep 0.01; done")
    shipper.follow("c1")
    time.sleep(0.5)
    private_redis["process"].kill()
    private_redis["process"].wait()
    assert runtime.wait("c1", 30)  # the container never waits for log readers
    private_redis["process"] = private_redis["start"]()
    assert wait_for(lambda: _pings(client), 10)
    # The new Redis is empty: everything after the outage is shipped again in order,
    # and nothing before the outage is sent twice.
    assert wait_for(lambda: entries(client, "c1") and
                    int(entries(client, "c1")[-1][1][b"l"]) == 299, 20)
    lines = [int(fields[b"l"]) for _, fields in entries(client, "c1")]
    assert lines == list(range(lines[0], 300))


def test_rotated_logs_are_shipped_whole(runtime, private_redis):
    client = private_redis["client"]
    shipper = LogShipper(private_redis["url"], runtime.root)
    shipper.start()
    # Many small files that together hold all of it: whatever the shipper's lag on a
    # busy machine, nothing is rotated away before it is read (what fits the limits).
    run(runtime, "for i in $(seq 1 20); do seq $((i*100-99)) $((i*100)); sleep 0.05; done",
        log={"max_size": 4000, "max_files": 40})
    shipper.follow("c1")
    assert runtime.wait("c1", 30)
    assert wait_for(lambda: len(entries(client, "c1")) == 2000, 20)
    assert [int(f[b"l"]) for _, f in entries(client, "c1")] == list(range(1, 2001))


def test_last_lines_shipped_before_removal_outlive_it_for_a_while(runtime, private_redis):
    client = private_redis["client"]
    shipper = LogShipper(private_redis["url"], runtime.root)
    run(runtime, "echo one")
    assert runtime.wait("c1", 10)
    shipper.follow("c1")
    assert len(entries(client, "c1")) == 1
    with open(runtime.path("c1") / "container.log", "ab") as log:  # written, not yet shipped
        log.write(b"2026-01-01T00:00:00.000000000Z stdout F two\n")
    shipper.ship("c1")  # as the agent does before it removes a container
    runtime.remove("c1")
    shipper.forget("c1")
    assert [f[b"l"] for _, f in entries(client, "c1")] == [b"one", b"two"]
    assert 0 < client.ttl(stream_key("c1")) <= 30


def test_logs_truncated_in_place_keep_shipping(runtime, private_redis):
    client = private_redis["client"]
    shipper = LogShipper(private_redis["url"], runtime.root)
    shipper.start()
    run(runtime, "for i in $(seq 1 30); do seq $((i*100-99)) $((i*100)); sleep 0.05; done",
        log={"max_size": 4000, "max_files": 1})
    shipper.follow("c1")
    assert runtime.wait("c1", 30)
    assert wait_for(lambda: entries(client, "c1") and
                    entries(client, "c1")[-1][1][b"l"] == b"3000", 20)
    lines = [int(f[b"l"]) for _, f in entries(client, "c1")]
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
