"""Shared fixtures: a real Redis on settings.REDIS_URL, started when nothing answers."""

import os
import socket
from pathlib import Path

import pytest

from berth import ctl


def stack_layout(var: Path, redis_url: str, **overrides) -> ctl.Layout:
    """A Layout for services started by tests: private var dir, ports and agent root."""
    base = ctl.Layout.from_env()
    values = dict(var=var, bind=base.bind, redis_url=redis_url, host_name=base.host_name,
                  agent_root=var / "agent", python=base.python)
    values.update(overrides)
    return ctl.Layout(**values)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    from django.conf import settings

    url = settings.REDIS_URL
    if ctl.redis_answers(url):
        yield url
        return
    layout = stack_layout(tmp_path_factory.mktemp("redis"), url)
    for directory in (layout.run, layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    ctl.ensure_redis(layout)
    yield url
    ctl.stop(layout, "redis")


@pytest.fixture
def needs_root():
    if os.geteuid() != 0:
        pytest.skip("needs root: namespaces and mounts")


from tests.fixtures import *  # noqa: E402,F401,F403 - personas and API clients
