"""This host's agent as one object: engine, supervisor, reporter and heartbeat."""

import logging
import threading
import time

from workers.engine.bootstrap import BUSYBOX_REFERENCE, bootstrap_busybox
from workers.engine.runtime import Runtime
from workers.engine.store import ContentStore, StoreError

from .attach import AttachPumps
from .config import AGENT_VERSION, AgentConfig
from .execs import ExecSessions
from .facts import host_facts
from .health import HealthMonitor
from .logship import LogShipper
from .reporter import Reporter
from .supervisor import Supervisor

log = logging.getLogger("berth.agent")
_node: "Node | None" = None


class Node:
    def __init__(self, config: AgentConfig):
        self.config = config
        config.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = ContentStore(config.store_root)
        self.runtime = Runtime(config.root, self.store)
        self.reporter = Reporter(config.host_name)
        self.shipper = LogShipper(config.redis_url, self.runtime.root)
        self.supervisor = Supervisor(self.runtime, self.reporter, self.shipper)
        self.execs = ExecSessions(config.redis_url, self.runtime)
        self.attachments = AttachPumps(config.redis_url, self.runtime)
        self.supervisor.health = HealthMonitor(self.runtime)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def container_lock(self, container_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(container_id, threading.Lock())

    def ensure_base_image(self) -> None:
        try:
            self.store.resolve(BUSYBOX_REFERENCE)
        except StoreError:
            record = bootstrap_busybox(self.store)
            log.info("bootstrapped %s as %s", record.reference, record.digest)

    def facts(self) -> dict:
        facts = host_facts(self.config.host_name, AGENT_VERSION)
        facts["images"] = [record.as_report() for record in self.store.images()]
        return facts

    def announce(self) -> None:
        """Register (or re-register) the host and report every container's state."""
        self.reporter.register(self.facts())
        self.supervisor.resend_all()

    def heartbeat_forever(self) -> None:
        interval = self.config.heartbeat_interval
        registered = True
        while True:
            time.sleep(interval)
            sent = self.reporter.heartbeat(time.time(), expires=interval * 3)
            if sent and not registered:
                self.announce()  # the broker came back: resend what may have been lost
            registered = sent
            self.reporter.flush()

    def start(self) -> None:
        self.ensure_base_image()
        self.shipper.start()
        self.supervisor.start()
        self.announce()
        threading.Thread(target=self.heartbeat_forever, name="heartbeat", daemon=True).start()


def node() -> Node:
    if _node is None:
        raise RuntimeError("the agent is not started in this process")
    return _node


def start_node(config: AgentConfig) -> Node:
    global _node
    _node = Node(config)
    _node.start()
    return _node
