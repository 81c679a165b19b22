"""Celery tasks the control plane sends to this host's queue (docs/agent-protocol.md).

Each task is a thin call into the engine followed by a state report; the
engine's refusals become a report with the error, never a lost request.
"""

import logging

from berth.celery import app
from workers.engine import state as engine_state
from workers.engine.runtime import NoSuchContainer, RuntimeError_

from . import images, volume_tasks
from .node import node

log = logging.getLogger("berth.agent")
RPC_LOG_LINES = 100_000


@app.task(name="agent.container_run", ignore_result=True)
def container_run(container_id: str, spec: dict) -> None:
    """Create and start; `spec["start"] = False` only creates (docker create)."""
    with node().container_lock(container_id):
        _run(container_id, spec)


def _run(container_id: str, spec: dict) -> None:
    agent = node()
    try:
        agent.runtime.create(container_id, spec)
    except RuntimeError_ as exc:
        agent.reporter.container(container_id, _failure(str(exc)))
        return
    agent.supervisor.track(container_id)
    if spec.get("start", True):
        _start(agent, container_id)


@app.task(name="agent.container_start", ignore_result=True)
def container_start(container_id: str) -> None:
    _guarded(container_id, lambda agent: _start(agent, container_id))


def _start(agent, container_id: str) -> None:
    try:
        agent.runtime.start(container_id)
    except RuntimeError_ as exc:
        engine_state.write_state(agent.runtime.existing(container_id), error=str(exc))
        log.warning("start %s refused: %s", container_id, exc)
    agent.supervisor.track(container_id)


@app.task(name="agent.container_stop", ignore_result=True)
def container_stop(container_id: str, timeout: int = 10) -> None:
    _guarded(container_id, lambda agent: agent.runtime.stop(container_id, timeout))


@app.task(name="agent.container_restart", ignore_result=True)
def container_restart(container_id: str, timeout: int = 10) -> None:
    def restart(agent) -> None:
        agent.runtime.stop(container_id, timeout)
        _start(agent, container_id)
    _guarded(container_id, restart)


@app.task(name="agent.container_kill", ignore_result=True)
def container_kill(container_id: str, signal: int = 9) -> None:
    _guarded(container_id, lambda agent: agent.runtime.kill(container_id, signal))


@app.task(name="agent.container_pause", ignore_result=True)
def container_pause(container_id: str) -> None:
    _guarded(container_id, lambda agent: agent.runtime.pause(container_id))


@app.task(name="agent.container_unpause", ignore_result=True)
def container_unpause(container_id: str) -> None:
    _guarded(container_id, lambda agent: agent.runtime.unpause(container_id))


@app.task(name="agent.container_update")
def container_update(container_id: str, limits: dict | None = None,
                     restart: str | None = None) -> dict:
    with node().container_lock(container_id):
        config = node().runtime.update(container_id, limits, restart)
    return {"limits": config.get("limits", {}), "restart": config.get("restart", "no")}


@app.task(name="agent.container_stats")
def container_stats(container_id: str) -> dict:
    return node().runtime.stats(container_id)


@app.task(name="agent.container_remove", ignore_result=True)
def container_remove(container_id: str, force: bool = False, volumes: bool = False) -> None:
    """`volumes`: also remove the container's anonymous volumes (docker rm -v)."""
    with node().container_lock(container_id):
        _remove(container_id, force, volumes)


def _remove(container_id: str, force: bool, volumes: bool = False) -> None:
    agent = node()
    anonymous = volume_tasks.anonymous_volumes(container_id) if volumes else []
    agent.shipper.ship(container_id)  # its last lines, before its files go
    try:
        final = agent.runtime.remove(container_id, force, volumes=volumes)
    except NoSuchContainer:
        # Nothing on this host (it never got created here): a seq no earlier
        # report can beat tells the control plane to drop the row.
        final = {"seq": 2**31 - 1, "state": engine_state.REMOVED}
    except RuntimeError_ as exc:
        log.warning("remove %s refused: %s", container_id, exc)
        return
    agent.shipper.forget(container_id)
    volume_tasks.report_removed(anonymous)  # first: whoever sees the container gone looks next
    agent.supervisor.report(container_id, engine_state.as_report(final))


@app.task(name="agent.exec_start", ignore_result=True)
def exec_start(exec_id: str, container_id: str, spec: dict) -> None:
    """Start an exec; its stdio then flows through Redis streams (workers/agent/execs.py)."""
    node().execs.start(exec_id, container_id, spec)


@app.task(name="agent.container_attach", ignore_result=True)
def container_attach(container_id: str) -> None:
    """Feed the container's stdin or terminal from its attach stream while it runs."""
    node().attachments.attach(container_id)


@app.task(name="agent.container_logs")
def container_logs(container_id: str, tail: int | None = None, timestamps: bool = False) -> str:
    # Through the result backend: bounded, or a huge log would exhaust the agent.
    return node().runtime.logs(container_id, min(tail or RPC_LOG_LINES, RPC_LOG_LINES),
                               timestamps)


@app.task(name="agent.broadcast.report_all", ignore_result=True)
def report_all() -> None:
    node().announce()


def _guarded(container_id: str, action) -> None:
    """One task at a time per container: a remove must not overtake its own create."""
    agent = node()
    with agent.container_lock(container_id):
        try:
            action(agent)
        except RuntimeError_ as exc:
            log.warning("%s", exc)


def _failure(message: str) -> dict:
    # A container that never got a directory on this host: seq 1 lands on the
    # pending row, which then shows why.
    return {"seq": 1, "state": engine_state.EXITED, "pid": None, "exit_code": 128,
            "started_at": None, "finished_at": engine_state.now_iso(), "error": message}


# images (docs/agent-protocol.md, "Images")
@app.task(name="agent.image_pull", ignore_result=True)
def image_pull(operation_id: str, reference: str, registries: dict | None = None) -> None:
    agent = node()
    images.run_operation(agent, operation_id, images.do_pull(agent, reference, registries or {}))


@app.task(name="agent.image_pull_tags", ignore_result=True)
def image_pull_tags(operation_id: str, repository: str, registries: dict | None = None,
                    protected: list[str] | None = None) -> None:
    """Every tag of the repository but the ``protected`` references (docker pull -a)."""
    agent = node()
    images.run_operation(agent, operation_id, images.do_pull_tags(
        agent, repository, registries or {}, protected or []))


@app.task(name="agent.image_push", ignore_result=True)
def image_push(operation_id: str, reference: str, registries: dict | None = None) -> None:
    agent = node()
    images.run_operation(agent, operation_id, images.do_push(agent, reference, registries or {}))


@app.task(name="agent.image_load", ignore_result=True)
def image_load(operation_id: str, source: dict, protected: list[str] | None = None) -> None:
    agent = node()
    images.run_operation(agent, operation_id, images.do_load(agent, source, protected or []))


@app.task(name="agent.image_import", ignore_result=True)
def image_import(operation_id: str, source: dict, reference: str = "",
                 changes: dict | None = None) -> None:
    agent = node()
    images.run_operation(agent, operation_id,
                         images.do_import(agent, source, reference, changes or {}))


@app.task(name="agent.image_save", ignore_result=True)
def image_save(operation_id: str, references: list[str], target: dict,
               format: str = "docker") -> None:  # noqa: A002 - the protocol's name
    agent = node()
    images.run_operation(agent, operation_id,
                         images.do_save(agent, references, target, format))


@app.task(name="agent.image_tag")
def image_tag(source: str, target: str) -> dict:
    return images.tag(node(), source, target)


@app.task(name="agent.image_remove")
def image_remove(reference: str, force: bool = False) -> dict:
    return images.remove(node(), reference, force)


@app.task(name="agent.image_inspect")
def image_inspect(reference: str) -> dict:
    return images.inspect(node(), reference)


@app.task(name="agent.image_prune")
def image_prune(all: bool = False) -> dict:  # noqa: A002 - the protocol's name
    return images.prune(node(), all)
