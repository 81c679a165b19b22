"""Shared fixtures: a real Redis on settings.REDIS_URL, started when nothing answers."""

import contextlib
import json
import os
import secrets
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from berth import ctl

# Each session keeps its containers' cgroups under a parent of its own, so sessions
# can run side by side; set before anything imports workers.engine.cgroups.
os.environ.setdefault("BERTH_CGROUP_PARENT", f"berth-test-{os.getpid()}")
# Likewise bridges, veths and iptables chains: engine tests in this process take one
# prefix, the agents that tests start another (Layout.net_prefix), so that an engine
# test cleaning up its own never takes a running agent's away.
os.environ.setdefault("BERTH_NET_PREFIX", f"u{os.getpid():06x}")
AGENT_NET_PREFIX = f"t{os.getpid():06x}"


def _remove_stale_test_cgroups() -> None:
    for parent in Path("/sys/fs/cgroup").glob("**/berth-test-*"):
        if not Path(f"/proc/{parent.name.rsplit('-', 1)[-1]}").exists():
            with contextlib.suppress(OSError):  # still holds a crashed run's containers
                parent.rmdir()


_remove_stale_test_cgroups()


def stack_layout(var: Path, redis_url: str, **overrides) -> ctl.Layout:
    """A Layout for services started by tests: private var dir, ports and agent root."""
    base = ctl.Layout.from_env()
    values = dict(var=var, bind=base.bind, redis_url=redis_url, host_name=base.host_name,
                  agent_root=var / "agent", python=base.python,
                  docker_tcp=f"127.0.0.1:{free_port()}", docker_socket=str(var / "docker.sock"),
                  net_prefix=AGENT_NET_PREFIX)
    values.update(overrides)
    return ctl.Layout(**values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    from django.conf import settings

    with shared_redis(settings.REDIS_URL) as url:
        yield url


@contextlib.contextmanager
def shared_redis(url: str):
    """Redis on ``url``, started when nothing answers there (for tests and benchmarks).

    It runs from a fixed place, so that another session running side by side can use
    it; the session that started it stops it once no other session holds a database.
    """
    if ctl.redis_answers(url):
        yield url
        return
    layout = stack_layout(Path("/tmp/berth-test-redis"), url)
    for directory in (layout.run, layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    ctl.ensure_redis(layout)
    try:
        yield url
    finally:
        import redis

        client = redis.Redis.from_url(url)
        others = list(client.scan_iter(match="berth:test-db-lock:*"))
        client.close()
        if not others:
            ctl.stop(layout, "redis")


@pytest.fixture
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces and mounts")



class Api:
    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base}{path}", data=data, method=method)
        if self.token:
            request.add_header("Authorization", f"Token {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        status, payload = self.call(method, path, body)
        return status, json.loads(payload) if payload else {}

    def wait_state(self, container_id: str, states: set[str], timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, row = self.json("GET", f"/api/containers/{container_id}/")
            if row.get("state") in states:
                return row
            time.sleep(0.05)
        raise AssertionError(f"container never reached {states}: {row}")


@contextlib.contextmanager
def private_redis_db(redis_url: str):
    """A Redis database no other test session holds: its queues are this stack's alone.

    Test sessions may run side by side (helpers, CI retries), and two stacks on one
    database would consume each other's ``control`` queue.
    """
    import redis

    client = redis.Redis.from_url(redis_url)
    base = redis_url.rsplit("/", 1)[0]
    for number in range(8, 16):
        lock = f"berth:test-db-lock:{number}"
        holder = client.get(lock)
        if holder and not Path(f"/proc/{int(holder)}").exists():  # a crashed session's
            client.delete(lock)
        elif not holder and not _test_owned(redis.Redis.from_url(f"{base}/{number}")):
            continue  # in use by something that takes no lock (a developer's `make up`)
        if client.set(lock, os.getpid(), nx=True, ex=3 * 3600):
            break
    else:
        raise RuntimeError("every test Redis database 8-15 is held; delete berth:test-db-lock:*")
    database = redis.Redis.from_url(f"{base}/{number}")
    try:
        database.flushdb()
        database.set(TEST_DB_MARKER, 1)
        yield f"{base}/{number}"
    finally:
        database.flushdb()
        database.set(TEST_DB_MARKER, 1)
        client.delete(lock)
        client.close()


TEST_DB_MARKER = "berth:test-database"


def _test_owned(database) -> bool:
    """Empty, or left by a test session (which marks its database)."""
    return database.dbsize() == 0 or bool(database.exists(TEST_DB_MARKER))


@pytest.fixture(scope="session")
def stack(tmp_path_factory, redis_url):
    with private_redis_db(redis_url) as stack_redis:
        yield from _stack(tmp_path_factory, stack_redis)


def _stack(tmp_path_factory, stack_redis):
    var = tmp_path_factory.mktemp("stack")
    layout = stack_layout(
        var,
        stack_redis,
        bind=f"127.0.0.1:{free_port()}",
        host_name=f"stack-{secrets.token_hex(3)}",
    )
    with pytest.MonkeyPatch.context() as patch:
        # Offline detection in seconds rather than the default 15, to keep the test short.
        patch.setenv("BERTH_HOST_OFFLINE_AFTER", "6")
        try:
            ctl.up(layout)
            token = ctl.manage(layout, "create_token", "admin")
            yield layout, Api(layout.url, token)
        finally:
            ctl.down(layout)
    with open("/proc/self/mounts") as mounts:
        assert [line for line in mounts if str(var) in line] == []
    assert all(pid is None for pid in ctl.status(layout).values())


from tests.fixtures import *  # noqa: E402,F401,F403 - personas and API clients
