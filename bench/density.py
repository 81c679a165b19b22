"""Density: host memory per idle container (`sleep`), Berth vs Docker.

Berth starts N containers (default 1,000) through its engine; Docker starts
M (default 100) with `docker run -d --network none` on a private dockerd.
Memory is the host's used memory (MemTotal − MemAvailable, page cache dropped
first) after minus before, divided by the count: what a container really
costs the host, the supervisors (shims, dockerd growth) included. Prints
both, the time to start them, and the ratio (target ≤ 0.25).
Run as root:  .venv/bin/python bench/density.py [-n 1000] [-m 100]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_docker import PrivateDockerd  # noqa: E402
from workers.engine.bootstrap import BUSYBOX_REFERENCE, bootstrap_busybox  # noqa: E402
from workers.engine.runtime import Runtime  # noqa: E402
from workers.engine.store import ContentStore  # noqa: E402


def used_memory() -> int:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    time.sleep(1)
    fields = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        name, value = line.split(":")
        fields[name] = int(value.split()[0]) * 1024
    return fields["MemTotal"] - fields["MemAvailable"]


def berth(root: Path, count: int) -> tuple[float, float]:
    store = ContentStore(root / "store")
    bootstrap_busybox(store)
    runtime = Runtime(root, store)
    runtime.create("warm", {"image": BUSYBOX_REFERENCE, "args": ["true"]})
    runtime.start("warm")  # starts the zygote, which is part of the baseline
    runtime.wait("warm", 10)
    before = used_memory()
    started = time.perf_counter()
    for index in range(count):
        runtime.create(f"idle{index}", {"image": BUSYBOX_REFERENCE, "args": ["sleep", "3600"]})
        runtime.start(f"idle{index}")
    elapsed = time.perf_counter() - started
    per_container = (used_memory() - before) / count
    for index in range(count):
        runtime.remove(f"idle{index}", force=True)
    runtime.stop_zygote()
    return per_container, elapsed


def docker(root: Path, layer: Path, count: int) -> tuple[float, float]:
    with PrivateDockerd() as dockerd:
        tar = subprocess.run(["tar", "-C", str(layer), "-c", "."], check=True,
                             capture_output=True).stdout
        dockerd.docker("import", "-", "busybox:bench", input=tar)
        dockerd.docker("run", "--rm", "--network", "none", "busybox:bench", "true")
        before = used_memory()
        started = time.perf_counter()
        for index in range(count):
            dockerd.docker("run", "-d", "--network", "none", "--name", f"idle{index}",
                           "busybox:bench", "sleep", "3600")
        elapsed = time.perf_counter() - started
        per_container = (used_memory() - before) / count
    return per_container, elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=1000, help="Berth containers")
    parser.add_argument("-m", type=int, default=100, help="Docker containers")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-density-"))
    try:
        b_mem, b_time = berth(work / "berth", args.n)
        store = ContentStore(work / "berth" / "store")
        layer = store.layer_path(store.resolve(BUSYBOX_REFERENCE).chain_ids[0])
        d_mem, d_time = docker(work / "docker", layer, args.m)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"berth:  {args.n} idle containers, {b_mem / 2**20:.2f} MiB each, "
          f"started in {b_time:.1f} s ({b_time / args.n * 1000:.0f} ms each)")
    print(f"docker: {args.m} idle containers, {d_mem / 2**20:.2f} MiB each, "
          f"started in {d_time:.1f} s ({d_time / args.m * 1000:.0f} ms each)")
    print(f"memory per container, berth/docker {b_mem / d_mem:.2f}  (target ≤ 0.25)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
