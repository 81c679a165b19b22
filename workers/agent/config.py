"""The agent's settings, read from the environment once at start."""

import os
import socket
from dataclasses import dataclass
from pathlib import Path

AGENT_VERSION = "0.1.0"


@dataclass(frozen=True)
class AgentConfig:
    host_name: str
    root: Path
    heartbeat_interval: float
    concurrency: int
    redis_url: str

    @property
    def store_root(self) -> Path:
        return self.root / "store"

    @classmethod
    def from_env(cls, host_name: str | None = None, root: str | None = None) -> "AgentConfig":
        return cls(
            host_name=host_name or os.environ.get("BERTH_HOST_NAME") or socket.gethostname(),
            root=Path(root or os.environ.get("BERTH_AGENT_ROOT") or "/var/lib/berth"),
            heartbeat_interval=float(os.environ.get("BERTH_HEARTBEAT_INTERVAL", "3")),
            concurrency=int(os.environ.get("BERTH_AGENT_CONCURRENCY", "8")),
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
        )
