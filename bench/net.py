"""Container networking, Berth vs Docker (a private dockerd from Debian's docker.io), in one run.

For each engine, on a user-defined bridge network with the same busybox image:
  c2c rps     one client container fetching a small file from an httpd container, one
              connection per request (busybox wget in a loop, timed inside the container)
  c2c MB/s    the same client downloading --mb MiB from the httpd container (a 64 MiB
              file, again and again)
  host rps    the host fetching the small file through a port published on 127.0.0.1
  host MB/s   the host downloading --mb MiB through that published port
  net start   the networking part of container start latency: median run time of
              `true` on the network minus the same with no network (--network none)
Prints a table and the Berth/Docker ratios (target ≥ 1.0 for rates, ≤ 1.0 for latency).
Then --cycles create/remove cycles on Berth (a published port each, every tenth one
started) and what they left: links, DNAT rules, leases, namespaces (all must be 0).
Docker runs with its defaults (userland proxy for published ports from the host).
Both engines run server and client with their default seccomp filters, as users do.
Both engines run side by side and are measured in turns (--rounds; medians), so that
load from elsewhere on the machine falls on both alike.
Run as root:  .venv/bin/python bench/net.py [--mb 1024] [--requests 300] [--starts 20]
                                            [--rounds 3] [--cycles 500] [--only-cycles]
"""

import argparse
import http.client
import os
import shutil
import signal
import statistics
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

os.environ.setdefault("BERTH_NET_PREFIX", f"b{os.getpid():06x}")

BIG_MIB = 64  # the file downloaded for throughput (from the page cache)
SERVER = ("mkdir -p /www && echo small > /www/index.html && "
          f"dd if=/dev/zero of=/www/big bs=1048576 count={BIG_MIB} 2>/dev/null && "
          "exec httpd -f -p 80 -h /www")
CLOCK = "cut -d' ' -f1 /proc/uptime"


def client_script(address: str, requests: int, mib: int) -> str:
    """Prints two durations (seconds, from /proc/uptime): the request loop, the downloads."""
    return (f"a=$({CLOCK}); i=0; while [ $i -lt {requests} ]; do "
            f"wget -q -O /dev/null http://{address}/index.html || exit 1; i=$((i+1)); done; "
            f"b=$({CLOCK}); i=0; while [ $i -lt {mib // BIG_MIB} ]; do "
            f"wget -q -O /dev/null http://{address}/big || exit 2; i=$((i+1)); done; "
            f"c=$({CLOCK}); echo elapsed $a $b $c")


def parse_elapsed(output: str) -> tuple[float, float]:
    line = next(line for line in output.splitlines() if line.startswith("elapsed "))
    a, b, c = (float(x) for x in line.split()[1:])
    return b - a, c - b


def host_figures(port: int, requests: int, mib: int) -> tuple[float, float]:
    wait_for_http(port)
    started = time.perf_counter()
    for _ in range(requests):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/index.html")
        assert connection.getresponse().read() == b"small\n"
        connection.close()
    rps = requests / (time.perf_counter() - started)
    started, received = time.perf_counter(), 0
    for _ in range(mib // BIG_MIB):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/big")
        response = connection.getresponse()
        while chunk := response.read(1 << 20):
            received += len(chunk)
        connection.close()
    seconds = time.perf_counter() - started
    assert received == (mib // BIG_MIB) * BIG_MIB << 20, received
    return rps, received / (1 << 20) / seconds


def wait_for_http(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/index.html")
            connection.getresponse().read()
            connection.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- Berth ---------------------------------------------------------------------------------

class BerthSide:
    name = "Berth"

    def __init__(self, root: Path):
        self.store = ContentStore(root / "store")
        bootstrap_busybox(self.store)
        self.runtime = Runtime(root, self.store)
        self.network = {"network_mode": "bench", "networks": [{"name": "bench"}]}
        self.runs = 0

    def __enter__(self):
        try:
            return self._set_up()
        except BaseException:
            self.__exit__()
            raise

    def _set_up(self):
        self.runtime.networks.create("bench")
        self.port = free_port()
        self.runtime.create("server", {
            "image": BUSYBOX_REFERENCE, "args": ["sh", "-c", SERVER], "name": "server",
            **self.network,
            "ports": [{"container_port": 80, "host_port": self.port, "host_ip": "127.0.0.1"}]})
        self.runtime.start("server")
        self.address = self.runtime.state("server")["networks"]["bench"]["ip"]
        return self

    def client(self, requests: int, mib: int) -> str:
        self.runs += 1
        name = f"client{self.runs}"
        self.runtime.create(name, {"image": BUSYBOX_REFERENCE, "name": name, **self.network,
                                   "args": ["sh", "-c", client_script(self.address, requests,
                                                                      mib)]})
        self.runtime.start(name)
        self.runtime.wait(name, 600)
        output = self.runtime.logs(name)
        self.runtime.remove(name)
        return output

    def start_true(self, networked: bool) -> float:
        self.runs += 1
        name = f"start{self.runs}"
        spec = {"image": BUSYBOX_REFERENCE, "args": ["true"], "network_mode": "none"}
        if networked:
            spec.update(network_mode="bench", networks=[{"name": "bench"}])
        started = time.perf_counter()
        self.runtime.create(name, spec)
        self.runtime.start(name)
        self.runtime.wait(name, 30)
        self.runtime.remove(name)
        return time.perf_counter() - started

    def layer(self) -> Path:
        return self.store.layer_path(self.store.resolve(BUSYBOX_REFERENCE).chain_ids[0])

    def __exit__(self, *exc):
        for container_id in self.runtime.ids():
            self.runtime.remove(container_id, force=True)
        self.runtime.shutdown()
        self.runtime.networks.purge()


def churn(root: Path, cycles: int) -> dict:
    from workers.engine.network import firewall, links, names

    store = ContentStore(root / "store")
    bootstrap_busybox(store)
    runtime = Runtime(root, store)
    try:
        runtime.networks.create("churn")
        started = time.perf_counter()
        for index in range(cycles):
            name = f"churn{index}"
            network = ({"network_mode": "bridge"} if index % 2 else
                       {"network_mode": "churn", "networks": [{"name": "churn"}]})
            runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": ["sleep", "5"],
                                  "ports": [{"container_port": 80, "host_port": 0}],
                                  **network})
            if index % 10 == 0:
                runtime.start(name)
            runtime.remove(name, force=True)
        per_cycle = (time.perf_counter() - started) / max(cycles, 1)
        prefix = names.prefix()
        dnat = subprocess.run(["iptables", "-t", "nat", "-S", names.chain("DNAT")],
                              capture_output=True, text=True).stdout.count("DNAT --to")
        left = {
            "veths": len(links.links_named(lambda n: n.startswith((f"{prefix}v",
                                                                    f"{prefix}p")))),
            "dnat_rules": dnat,
            "leases": sum(len(runtime.networks._pool(n).leases())
                          for n in runtime.networks.networks()),
            "netns": len(list((runtime.networks.root / "netns").iterdir())),
            "endpoints": len(runtime.networks.endpoints()),
            "chains_after_shutdown": None,
        }
        runtime.shutdown()
        left["chains_after_shutdown"] = len(firewall.chains_present())
        return {"per_cycle_ms": per_cycle * 1000, "left": left}
    finally:
        for container_id in runtime.ids():
            runtime.remove(container_id, force=True)
        runtime.shutdown()
        runtime.networks.purge()


# ---- Docker --------------------------------------------------------------------------------

class NetworkedDockerd(PrivateDockerd):
    """PrivateDockerd with Docker's default networking: docker0, iptables, userland proxy.
    Its bridges and iptables chains are removed again on exit."""

    networking_args = ()

    def __enter__(self):
        if Path("/sys/class/net/docker0").exists():
            raise SystemExit("a docker0 bridge exists already: is another dockerd running?")
        self.forward_policy = _policy("FORWARD")
        return super().__enter__()

    def __exit__(self, *exc):
        self.docker("rm", "-f", *self._all_containers(), check=False)
        self.docker("network", "prune", "-f", check=False)
        try:
            super().__exit__(*exc)
        finally:
            _remove_docker_networking(self.forward_policy)


def _policy(chain: str) -> str:
    listing = subprocess.run(["iptables", "-S", chain], capture_output=True, text=True).stdout
    return next((line.split()[2] for line in listing.splitlines() if line.startswith("-P")),
                "ACCEPT")


def _remove_docker_networking(forward_policy: str) -> None:
    for table in ("filter", "nat"):
        listing = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True,
                                 text=True).stdout.splitlines()
        for rule in listing:
            parts = rule.split()
            if parts[0] == "-A" and not parts[1].startswith("DOCKER") and (
                    "DOCKER" in rule or "docker0" in rule or "br-" in rule):
                subprocess.run(["iptables", "-t", table, "-D", *parts[1:]], capture_output=True)
        chains = [line.split()[1] for line in listing if line.startswith("-N DOCKER")]
        for flag in ("-F", "-X"):
            for chain in chains:
                subprocess.run(["iptables", "-t", table, flag, chain], capture_output=True)
    subprocess.run(["iptables", "-P", "FORWARD", forward_policy], capture_output=True)
    if Path("/sys/class/net/docker0").exists():
        from workers.engine.network import links

        links.remove_link("docker0")


class DockerSide:
    name = "Docker"

    def __init__(self, layer: Path):
        self.layer = layer
        self.dockerd = NetworkedDockerd()

    def __enter__(self):
        dockerd = self.dockerd.__enter__()
        try:
            return self._set_up(dockerd)
        except BaseException:
            self.dockerd.__exit__()
            raise

    def _set_up(self, dockerd):
        tar = subprocess.run(["tar", "-C", str(self.layer), "-c", "."], check=True,
                             capture_output=True).stdout
        dockerd.docker("import", "-", "busybox:bench", input=tar)
        dockerd.docker("network", "create", "bench")
        self.port = free_port()
        dockerd.docker("run", "-d", "--name", "server", "--network", "bench",
                       "-p", f"127.0.0.1:{self.port}:80", "busybox:bench", "sh", "-c", SERVER)
        self.address = dockerd.docker(
            "inspect", "-f", "{{.NetworkSettings.Networks.bench.IPAddress}}", "server",
            text=True).stdout.strip()
        return self

    def client(self, requests: int, mib: int) -> str:
        return self.dockerd.docker("run", "--rm", "--network", "bench",
                                   "busybox:bench", "sh", "-c",
                                   client_script(self.address, requests, mib),
                                   text=True).stdout

    def start_true(self, networked: bool) -> float:
        started = time.perf_counter()
        self.dockerd.docker("run", "--rm", "--network", "bench" if networked else "none",
                            "busybox:bench", "true")
        return time.perf_counter() - started

    def __exit__(self, *exc):
        self.dockerd.__exit__(*exc)


def measure(sides: list, args) -> dict[str, dict[str, float]]:
    """Every figure of every side, taken in turns (round by round, engine by engine) so
    that load from elsewhere on the machine falls on both alike; medians of the rounds."""
    samples = {side.name: {key: [] for key, _, _ in ROWS} for side in sides}
    for _ in range(args.rounds):
        for side in sides:
            figures = samples[side.name]
            host_rps, host_mbps = host_figures(side.port, args.requests, args.mb)
            loop, download = parse_elapsed(side.client(args.requests, args.mb))
            figures["host_rps"].append(host_rps)
            figures["host_mbps"].append(host_mbps)
            figures["c2c_rps"].append(args.requests / loop)
            figures["c2c_mbps"].append(args.mb // BIG_MIB * BIG_MIB / download)
    starts = {side.name: {True: [], False: []} for side in sides}
    for _ in range(args.starts):
        for side in sides:
            for networked in (True, False):
                starts[side.name][networked].append(side.start_true(networked))
    for side in sides:
        timing = starts[side.name]
        samples[side.name]["net_start_ms"] = [
            (statistics.median(timing[True]) - statistics.median(timing[False])) * 1000]
    return {name: {key: statistics.median(values) for key, values in figures.items()}
            for name, figures in samples.items()}


ROWS = (("c2c_rps", "container→container requests/s", True),
        ("c2c_mbps", "container→container MiB/s", True),
        ("host_rps", "host→published port requests/s", True),
        ("host_mbps", "host→published port MiB/s", True),
        ("net_start_ms", "networking part of start, ms", False))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=1024, help="MiB downloaded per round")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--only-cycles", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: networks need CAP_NET_ADMIN")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    work = Path(tempfile.mkdtemp(prefix="berth-bench-net-"))
    try:
        if not args.only_cycles:
            compare(work, args)
        if args.cycles:
            result = churn(work / "churn", args.cycles)
            print(f"{args.cycles} create/remove cycles: {result['per_cycle_ms']:.0f} ms each; "
                  f"left behind: {result['left']}")
            if any(result["left"].values()):
                return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def compare(work: Path, args) -> None:
    with BerthSide(work / "berth") as berth, DockerSide(berth.layer()) as docker:
        figures = measure([berth, docker], args)
    print(f"{'':38} {'Berth':>10} {'Docker':>10} {'ratio':>7}")
    for key, label, higher_is_better in ROWS:
        b, d = figures["Berth"][key], figures["Docker"][key]
        ratio = (b / d if higher_is_better else d / b) if b and d else float("nan")
        print(f"{label:38} {b:10.1f} {d:10.1f} {ratio:6.2f}×")
    print("ratio: Berth's advantage (≥ 1.0 meets the target; for latency, Docker/Berth)")


if __name__ == "__main__":
    sys.exit(main())
