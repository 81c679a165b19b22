"""Network tasks the control plane sends to this host's queue (docs/agent-protocol.md,
"Networks"). All are quick RPCs; a refusal raises `Conflict` (409) or `NotFound` (404).

At agent start, the host's bridges and Berth's iptables chains are rebuilt from the
engine's files and whatever no container holds any more (links, leases, namespaces,
rules) is removed.
"""

import contextlib
import logging

from celery.signals import worker_ready

from berth.celery import app
from workers.engine.network import NetworkError
from workers.engine.network import hooks as network_hooks
from workers.engine.runtime import NoSuchContainer

from . import node as node_module
from .node import node

log = logging.getLogger("berth.agent")


class Conflict(Exception):
    """The request does not fit the network or the container now."""


class NotFound(Exception):
    """No such network or container on this host."""


@contextlib.contextmanager
def _refusals():
    try:
        yield
    except NoSuchContainer as exc:
        raise NotFound(str(exc)) from None
    except NetworkError as exc:
        message = str(exc)
        raise (NotFound if message.endswith("not found") else Conflict)(message) from None


@app.task(name="agent.network_create")
def network_create(name: str, subnet: str | None = None, gateway: str | None = None,
                   internal: bool = False) -> dict:
    with _refusals():
        return node().runtime.networks.create(name, subnet or None, gateway or None, internal)


@app.task(name="agent.network_remove")
def network_remove(name: str) -> dict:
    with _refusals():
        existed = node().runtime.networks.get(name) is not None
        node().runtime.networks.remove(name)
    return {"removed": existed}


@app.task(name="agent.network_inspect")
def network_inspect(name: str) -> dict:
    networks = node().runtime.networks
    with _refusals():
        network = networks.get(name)
    if network is None:
        raise NotFound(f"network {name} not found")
    return {"network": network, "members": networks.members(name)}


@app.task(name="agent.network_list")
def network_list() -> list[dict]:
    return node().runtime.networks.networks()


@app.task(name="agent.network_connect")
def network_connect(container_id: str, network: dict) -> dict:
    agent = node()
    with agent.container_lock(container_id), _refusals():
        path = agent.runtime.existing(container_id)
        doc = agent.runtime.networks.connect(container_id, network)
        network_hooks.record(path, doc)
        return network_hooks.report(doc)


@app.task(name="agent.network_disconnect")
def network_disconnect(container_id: str, name: str) -> dict:
    agent = node()
    with agent.container_lock(container_id), _refusals():
        path = agent.runtime.existing(container_id)
        doc = agent.runtime.networks.disconnect(container_id, name)
        network_hooks.record(path, doc)
        return network_hooks.report(doc)


@worker_ready.connect
def restore_networks(**_) -> None:
    """Agent start: bridges and rules back from the files, stale ones removed."""
    if node_module._node is None:
        return
    runtime = node_module._node.runtime
    try:
        removed = runtime.networks.restore(runtime.ids())
    except (NetworkError, OSError) as exc:
        log.error("restoring networks failed: %s", exc)
        return
    log.info("networks restored; stale state removed: %s", removed)
