"""Start latency of `true` at engine level: Berth's runtime vs `runc run` of the same rootfs.

Berth: create + start + wait for exit (overlay root, namespaces, cgroup,
seccomp, capabilities, logs). runc: an OCI bundle made by `runc spec` over a
copy of the same busybox layer, run in the foreground. Both remove what they
made after each run (outside the timing). Prints medians and the ratio
(target ≤ 0.5). Run as root:  .venv/bin/python bench/start_latency.py [-n 50]
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers.engine.bootstrap import BUSYBOX_REFERENCE, bootstrap_busybox  # noqa: E402
from workers.engine.runtime import Runtime  # noqa: E402
from workers.engine.store import ContentStore  # noqa: E402


def time_berth(root: Path, runs: int) -> list[float]:
    store = ContentStore(root / "store")
    bootstrap_busybox(store)
    runtime = Runtime(root, store)
    times = []
    try:
        for index in range(runs + 1):  # the first run starts the zygote: not counted
            name = f"bench{index}"
            started = time.perf_counter()
            runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": ["true"]})
            runtime.start(name)
            runtime.wait(name, 30)
            elapsed = time.perf_counter() - started
            assert runtime.state(name)["exit_code"] == 0
            runtime.remove(name)
            if index:
                times.append(elapsed)
    finally:
        runtime.stop_zygote()
    return times


def time_runc(root: Path, layer: Path, runs: int) -> list[float]:
    if not shutil.which("runc"):
        raise SystemExit("runc is missing: apt-get install runc")
    bundle = root / "bundle"
    shutil.copytree(layer, bundle / "rootfs", symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(spec))
    times = []
    for index in range(runs + 1):
        name = f"bench{index}"
        started = time.perf_counter()
        subprocess.run(["runc", "--root", str(root / "state"), "run", "--bundle", str(bundle),
                        name], check=True, stdin=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        subprocess.run(["runc", "--root", str(root / "state"), "delete", "-f", name],
                       capture_output=True)
        if index:
            times.append(elapsed)
    return times


def p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-start-"))
    try:
        berth = time_berth(work / "berth", args.n)
        store = ContentStore(work / "berth" / "store")
        layer = store.layer_path(store.resolve(BUSYBOX_REFERENCE).chain_ids[0])
        runc = time_runc(work / "runc", layer, args.n)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    b, r = statistics.median(berth), statistics.median(runc)
    print(f"start latency of `true`, n={args.n}")
    print(f"berth engine  median {b * 1000:.1f} ms  (p90 {p90(berth) * 1000:.1f})")
    print(f"runc run      median {r * 1000:.1f} ms  (p90 {p90(runc) * 1000:.1f})")
    print(f"ratio berth/runc {b / r:.2f}  (target ≤ 0.50)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
