"""Time from `POST /api/containers/` to the row showing `exited`, for `echo hello`.

Starts its own Berth the way `make up` does (private var dir, port and Redis
database), runs N containers one after another, prints median and p90, then
stops everything. Run as root:  .venv/bin/python bench/post_to_exit.py [-n 20]
"""

import argparse
import json
import secrets
import socket
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from berth import ctl  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(base: str, token: str, method: str, path: str, body=None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Authorization": f"Token {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())


def one_run(base: str, token: str) -> float:
    started = time.perf_counter()
    row = request(base, token, "POST", "/api/containers/",
                  {"image": "busybox", "command": ["echo", "hello"]})
    while row["state"] != "exited":
        time.sleep(0.002)
        row = request(base, token, "GET", f"/api/containers/{row['id']}/")
    elapsed = time.perf_counter() - started
    request(base, token, "DELETE", f"/api/containers/{row['id']}/")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=20)
    args = parser.parse_args()
    base_layout = ctl.Layout.from_env()
    var = Path(tempfile.mkdtemp(prefix="berth-bench-"))
    layout = ctl.Layout(var=var, bind=f"127.0.0.1:{free_port()}",
                        redis_url=base_layout.redis_url.rsplit("/", 1)[0] + "/12",
                        host_name=f"bench-{secrets.token_hex(3)}", agent_root=var / "agent",
                        python=base_layout.python,
                        docker_tcp="off", docker_socket="off")  # not measured here
    try:
        ctl.up(layout)
        token = ctl.manage(layout, "create_token", "admin")
        one_run(layout.url, token)  # warm-up: first imports, first connections
        times = [one_run(layout.url, token) for _ in range(args.n)]
    finally:
        ctl.down(layout)
    times.sort()
    print(f"POST → exited, echo hello, n={args.n}: median {statistics.median(times) * 1000:.0f} ms"
          f", p90 {times[int(len(times) * 0.9) - 1] * 1000:.0f} ms"
          f", min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
