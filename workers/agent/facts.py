"""What the control plane wants to know about this host."""

import os
import platform
from pathlib import Path


def cgroup_version() -> str:
    """`v2` (unified), `v1`, or `hybrid` (v1 controllers with a cgroup2 tree beside them)."""
    root = Path("/sys/fs/cgroup")
    if (root / "cgroup.controllers").exists():
        return "v2"
    if (root / "unified" / "cgroup.controllers").exists():
        return "hybrid"
    return "v1"


def memory_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def host_facts(host_name: str, agent_version: str) -> dict:
    return {
        "name": host_name,
        "kernel": platform.release(),
        "cgroup_version": cgroup_version(),
        "cpus": os.cpu_count() or 1,
        "memory_bytes": memory_bytes(),
        "agent_version": agent_version,
    }
