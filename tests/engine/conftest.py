"""Engine fixtures. Nothing here imports Django: the engine stands on its own."""

import shutil

import pytest

from workers.engine.bootstrap import bootstrap_busybox
from workers.engine.runtime import Runtime
from workers.engine.state import LIVE
from workers.engine.store import ContentStore


@pytest.fixture
def store(tmp_path):
    return ContentStore(tmp_path / "store")


@pytest.fixture
def busybox(store):
    return bootstrap_busybox(store)


@pytest.fixture
def runtime(tmp_path, store, busybox):
    runtime = Runtime(tmp_path, store)
    yield runtime
    try:
        # Kill whatever a failing test left running: its mounts live in its own
        # mount namespace and go with its last process.
        for container_id in runtime.ids():
            if runtime.state(container_id)["state"] in LIVE:
                runtime.stop(container_id, timeout=0)
    finally:
        runtime.shutdown()  # whatever happened above: else its zygote lives on, orphaned
        shutil.rmtree(tmp_path / "containers", ignore_errors=True)
