"""Pull a ~200 MB, 5-layer image from a local registry: Berth's engine vs `docker pull`.

Both pull the same image from the same docker-registry on loopback into an
empty store each run. Prints both medians and the ratio (target ≤ 0.7).
Run as root:  .venv/bin/python bench/pull.py [-n 5] [--mb 200]
"""

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_docker import PrivateDockerd  # noqa: E402
from tests.engine.layouts import Layout  # noqa: E402
from tests.engine.registries import Registry, skopeo_push  # noqa: E402
from workers.engine.pull import pull  # noqa: E402
from workers.engine.store import ContentStore  # noqa: E402

LAYERS = 5


def layer_bytes(size: int, seed: int) -> bytes:
    """Half random, half text-like: compresses about 2:1, as real layers do."""
    import io
    import tarfile

    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(5000)]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        per_file = 4 << 20
        for index in range(max(1, size // per_file)):
            if index % 2:
                data = rng.randbytes(per_file)
            else:
                data = b" ".join(rng.choices(words, k=per_file // 6))[:per_file]
            info = tarfile.TarInfo(f"layer{seed}/file{index}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_image(root: Path, total_mb: int) -> Path:
    layout = Layout(root)
    tars = [layer_bytes(total_mb * (1 << 20) // LAYERS, seed) for seed in range(LAYERS)]
    descriptor, _ = layout.image(tars)
    layout.tag(descriptor, "bench")
    layout.write()
    return layout.root


def time_berth(reference: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        root = Path(tempfile.mkdtemp(prefix="berth-bench-store-"))
        try:
            store = ContentStore(root)
            started = time.perf_counter()
            pull(store, reference)
            times.append(time.perf_counter() - started)
        finally:
            shutil.rmtree(root)
    return times


def time_docker(dockerd: PrivateDockerd, reference: str, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        dockerd.docker("pull", "-q", reference)
        times.append(time.perf_counter() - started)
        dockerd.docker("rmi", reference)
        dockerd.docker("image", "prune", "-af")
    return times


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5)
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="berth-bench-pull-"))
    registry = Registry(work / "registry").start()
    try:
        print(f"building a {args.mb} MB image of {LAYERS} layers…", flush=True)
        layout = build_image(work / "layout", args.mb)
        skopeo_push(f"oci:{layout}:bench", registry, "bench/app:1")
        compressed = sum(p.stat().st_size for p in (registry.root / "data").rglob("data"))
        reference = f"{registry.address}/bench/app:1"
        with PrivateDockerd([registry.address]) as dockerd:
            docker_times = time_docker(dockerd, reference, args.n)
        berth_times = time_berth(reference, args.n)
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)
    berth, docker = statistics.median(berth_times), statistics.median(docker_times)
    print(f"image: {args.mb} MB uncompressed, {compressed / 1e6:.0f} MB in the registry, "
          f"{LAYERS} layers, n={args.n}")
    print(f"berth pull   median {berth:.2f} s   ({', '.join(f'{t:.2f}' for t in berth_times)})")
    print(f"docker pull  median {docker:.2f} s   ({', '.join(f'{t:.2f}' for t in docker_times)})")
    print(f"ratio berth/docker {berth / docker:.2f}  (target ≤ 0.70)")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
