"""Logs: a container printing 1,000,000 lines, Berth vs Docker's json-file driver.

Capture: from start to the container's exit with every line stored (Berth's
shim timestamps each line into its CRI-format file; dockerd's json-file driver
encodes each line as JSON). Read-back: every line, Berth's engine reader vs
`docker logs`. Prints times, rates and ratios (targets: capture ≥ 1.5× Docker's
rate, read-back ≥ 2×). Run as root:  .venv/bin/python bench/logs.py [--lines N]
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


def berth(root: Path, lines: int) -> tuple[float, float, Path]:
    store = ContentStore(root / "store")
    bootstrap_busybox(store)
    runtime = Runtime(root, store)
    try:
        runtime.create("logs", {"image": BUSYBOX_REFERENCE, "args": ["seq", "1", str(lines)]})
        started = time.perf_counter()
        runtime.start("logs")
        runtime.wait("logs", 600)
        capture = time.perf_counter() - started
        started = time.perf_counter()
        text = runtime.logs("logs")
        read = time.perf_counter() - started
        assert text.count("\n") == lines, text.count("\n")
        layer = store.layer_path(store.resolve(BUSYBOX_REFERENCE).chain_ids[0])
        return capture, read, layer
    finally:
        runtime.stop_zygote()


def docker(layer: Path, lines: int) -> tuple[float, float]:
    with PrivateDockerd() as dockerd:
        tar = subprocess.run(["tar", "-C", str(layer), "-c", "."], check=True,
                             capture_output=True).stdout
        dockerd.docker("import", "-", "busybox:bench", input=tar)
        dockerd.docker("create", "--name", "logs", "--network", "none", "--log-driver",
                       "json-file", "busybox:bench", "seq", "1", str(lines))
        started = time.perf_counter()
        dockerd.docker("start", "logs")
        dockerd.docker("wait", "logs")
        capture = time.perf_counter() - started
        started = time.perf_counter()
        output = dockerd.docker("logs", "logs").stdout
        read = time.perf_counter() - started
        assert output.count(b"\n") == lines, output.count(b"\n")
    return capture, read


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-logs-"))
    try:
        b_capture, b_read, layer = berth(work / "berth", args.lines)
        d_capture, d_read = docker(layer, args.lines)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = args.lines
    print(f"{n} lines")
    print(f"capture  berth {b_capture:.2f} s ({n / b_capture / 1e3:.0f}k lines/s)   "
          f"docker {d_capture:.2f} s ({n / d_capture / 1e3:.0f}k lines/s)   "
          f"rate ratio {d_capture / b_capture:.2f}× (target ≥ 1.5)")
    print(f"read     berth {b_read:.2f} s ({n / b_read / 1e3:.0f}k lines/s)   "
          f"docker {d_read:.2f} s ({n / d_read / 1e3:.0f}k lines/s)   "
          f"rate ratio {d_read / b_read:.2f}× (target ≥ 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
