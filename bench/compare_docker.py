"""The same docker CLI workload against Berth's Docker API and a private dockerd, in one run.

Rows: `run --rm IMG true` ×50, `run -d` ×100 then `rm -f`, `logs` of a 1,000,000-line
container, `exec` ×50, `ps -a` with 500 containers, `pull` from a local registry. Prints
the medians per row and Berth/dockerd ratios (targets: `run --rm` ≤ 0.25, others ≤ 1.0).
Run as root:  .venv/bin/python bench/compare_docker.py [--scale 0.1]
(``--scale`` shrinks every count, for a quick look.)
"""

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_docker import PrivateDockerd  # noqa: E402
from berth import ctl  # noqa: E402
from tests.conftest import private_redis_db, shared_redis  # noqa: E402
from tests.dockerapi_helpers import DOCKER, start_registry_with_image  # noqa: E402

TARGETS = {"run --rm": 0.25}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Engine:
    def __init__(self, name: str, host: str, config: Path | None):
        self.name, self.host, self.config = name, host, config

    def docker(self, *args: str, check: bool = True, quiet: bool = True) -> str:
        argv = [DOCKER, "-H", self.host, *(["--config", str(self.config)] if self.config else [])]
        result = subprocess.run([*argv, *args], capture_output=quiet, text=quiet,
                                stdout=None if quiet else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise SystemExit(f"{self.name}: docker {' '.join(args)} failed: {result.stderr}")
        return result.stdout or ""

    def timed(self, *args: str, quiet: bool = True) -> float:
        start = time.perf_counter()
        self.docker(*args, quiet=quiet)
        return time.perf_counter() - start


def workload(engine: Engine, image: str, scale: float) -> dict[str, float]:
    n = max(1, round(50 * scale))
    medians = {}
    times = []
    for _ in range(max(1, round(5 * scale))):
        engine.docker("rmi", "-f", image, check=False)
        times.append(engine.timed("pull", image))
    medians["pull"] = statistics.median(times)
    medians["run --rm"] = statistics.median(
        engine.timed("run", "--rm", image, "true") for _ in range(n))
    ids, starts = [], []
    for _ in range(max(1, round(100 * scale))):
        start = time.perf_counter()
        ids.append(engine.docker("run", "-d", image, "sleep", "600").strip())
        starts.append(time.perf_counter() - start)
    medians["run -d"] = statistics.median(starts)
    medians["exec"] = statistics.median(engine.timed("exec", ids[0], "true") for _ in range(n))
    start = time.perf_counter()
    engine.docker("rm", "-f", *ids)
    medians["rm -f (all run -d)"] = time.perf_counter() - start
    lines = max(1000, round(1_000_000 * scale))
    name = f"bench-logs-{secrets.token_hex(3)}"
    engine.docker("run", "--name", name, image, "seq", str(lines))
    medians[f"logs ({lines} lines)"] = statistics.median(
        engine.timed("logs", name, quiet=False) for _ in range(3))
    engine.docker("rm", name)
    count = max(5, round(500 * scale))
    many = [engine.docker("create", image, "true").strip() for _ in range(count)]
    medians[f"ps -a ({len(many)} containers)"] = statistics.median(
        engine.timed("ps", "-a") for _ in range(5))
    engine.docker("rm", *many)
    return medians


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="berth-compare-"))
    registry, image = start_registry_with_image(root)
    base = ctl.Layout.from_env()
    results = {}
    try:
        # no other session's queues
        with shared_redis(base.redis_url), private_redis_db(base.redis_url) as redis_url:
            layout = ctl.Layout(var=root / "var", bind=f"127.0.0.1:{free_port()}",
                                redis_url=redis_url, host_name=f"compare-{secrets.token_hex(3)}",
                                agent_root=root / "agent", python=base.python,
                                docker_tcp=f"127.0.0.1:{free_port()}",
                                docker_socket=str(root / "docker.sock"))
            results["berth"] = run_berth(layout, image, root, args.scale)
        # dockerd runs once Berth is down, so neither competes with the other's processes
        with PrivateDockerd(insecure_registries=[registry.address]) as dockerd:
            results["dockerd"] = workload(Engine("dockerd", f"unix://{dockerd.socket}", None),
                                          image, args.scale)
    finally:
        registry.stop()
    print(f"{'row':32} {'berth':>10} {'dockerd':>10} {'ratio':>7} target")
    for row, berth in results["berth"].items():
        docker = results["dockerd"][row]
        ratio = berth / docker if docker else float("inf")
        target = TARGETS.get(row, 1.0)
        verdict = "ok" if ratio <= target else "MISSED"
        print(f"{row:32} {berth * 1000:9.0f}ms {docker * 1000:9.0f}ms {ratio:7.2f} "
              f"≤{target:g} {verdict}")
    return 0


def run_berth(layout, image: str, root: Path, scale: float) -> dict[str, float]:
    try:
        ctl.up(layout)
        token = ctl.manage(layout, "create_token", "admin")
        config = root / "docker-config"
        config.mkdir()
        (config / "config.json").write_text(json.dumps({"HttpHeaders": {"X-Berth-Token": token}}))
        return workload(Engine("berth", f"tcp://{layout.docker_tcp}", config), image, scale)
    finally:
        ctl.down(layout)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: the agent creates namespaces and mounts")
    sys.exit(main())
