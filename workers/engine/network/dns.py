"""The embedded DNS resolver: container names and aliases, scoped to each network.

One process per engine root serves every user-defined network on its gateway
address, port 53 (udp and tcp), and answers only clients of that network's
subnet, so a name is visible on the networks its container is on and nowhere
else. Other names go to the host's upstream servers (its /etc/resolv.conf, or
BERTH_DNS_UPSTREAM="ip[:port],..."); this process runs in the host's network
namespace, so a loopback upstream such as systemd-resolved works too.

It outlives the agent, as containers do. The runtime asks it to `sync` (bind
new networks, drop removed ones) over a unix socket before a container on a
new network starts; records are re-read whenever the endpoint files change.

    python -m workers.engine.network.dns <engine root>/network
"""

import contextlib
import ipaddress
import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import dnswire
from .files import locked, read_json

SOCKET = "dns.sock"
PIDFILE = "dns.pid"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
UPSTREAM_TIMEOUT = 2.0
MAX_TCP_MESSAGE = 65535


class Records:
    """name → addresses and address → names per network, from the endpoint files."""

    def __init__(self, root: Path):
        self.directory = root / "endpoints"
        self.stamp = None
        self.names: dict[str, dict[str, list[str]]] = {}
        self.reverse: dict[str, dict[str, list[str]]] = {}

    def refresh(self) -> None:
        try:
            stamp = self.directory.stat().st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        if stamp == self.stamp:
            return
        names: dict = {}
        reverse: dict = {}
        for path in sorted(self.directory.glob("*.json")) if stamp else []:
            doc = read_json(path) or {}
            for link in doc.get("endpoints", []):
                aliases = [doc.get("name"), doc.get("container_id", "")[:12], *link["aliases"]]
                table = names.setdefault(link["network"], {})
                for alias in filter(None, aliases):
                    found = table.setdefault(alias.lower().rstrip("."), [])
                    if link["ip"] not in found:
                        found.append(link["ip"])
                if doc.get("name"):
                    reverse.setdefault(link["network"], {})[link["ip"]] = [
                        f"{doc['name']}.{link['network']}"]
        self.names, self.reverse, self.stamp = names, reverse, stamp

    def answer(self, network: str, question: dnswire.Question) -> bytes | None:
        """Our answer, or None when the name is not ours (then it is forwarded)."""
        self.refresh()
        if question.qclass != dnswire.CLASS_IN:
            return None
        if question.qtype == dnswire.TYPE_PTR:
            address = dnswire.ptr_address(question.name)
            found = self.reverse.get(network, {}).get(address or "")
            return question.reply(names=found) if found else None
        addresses = self.names.get(network, {}).get(question.name)
        if addresses is None:
            return None
        if question.qtype == dnswire.TYPE_A:
            return question.reply(addresses=addresses)
        return question.reply()  # the name exists, without records of that type


class Server:
    def __init__(self, root: Path):
        self.root = root
        self.records = Records(root)
        self.selector = selectors.DefaultSelector()
        self.bound: dict[str, tuple] = {}  # network → (gateway, subnet, udp, tcp)
        self.pool = ThreadPoolExecutor(16, thread_name_prefix="dns-forward")
        self.upstreams = upstream_servers()

    def sync(self) -> None:
        wanted = {}
        for path in (self.root / "networks").glob("*.json"):
            network = read_json(path) or {}
            if network.get("gateway") and not network.get("default"):
                wanted[network["name"]] = (network["gateway"], network["subnet"])
        for name in list(self.bound):
            if self.bound[name][:2] != wanted.get(name):
                self._unbind(name)
        for name, (gateway, subnet) in wanted.items():
            if name not in self.bound:
                self._bind(name, gateway, subnet)
        gateways = {g for g, _ in wanted.values()}
        self.upstreams = [u for u in upstream_servers() if u[0] not in gateways]

    def _bind(self, name: str, gateway: str, subnet: str) -> None:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            for sock in (udp, tcp):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((gateway, 53))
            tcp.listen(64)
        except OSError as exc:
            print(f"network {name}: cannot serve DNS on {gateway}:53: {exc}", file=sys.stderr)
            udp.close()
            tcp.close()
            return
        network = (name, ipaddress.IPv4Network(subnet))
        self.selector.register(udp, selectors.EVENT_READ, ("udp", network))
        self.selector.register(tcp, selectors.EVENT_READ, ("tcp", network))
        self.bound[name] = (gateway, subnet, udp, tcp)

    def _unbind(self, name: str) -> None:
        *_, udp, tcp = self.bound.pop(name)
        for sock in (udp, tcp):
            self.selector.unregister(sock)
            sock.close()

    def resolve(self, network: tuple, client: str, message: bytes) -> bytes | None:
        name, subnet = network
        try:
            question = dnswire.Question(message)
        except dnswire.Malformed:
            return None
        if ipaddress.IPv4Address(client) not in subnet:
            return question.reply(dnswire.REFUSED)
        return self.records.answer(name, question)

    def forward(self, message: bytes) -> bytes | None:
        for address, port in self.upstreams:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(UPSTREAM_TIMEOUT)
                try:
                    sock.sendto(message, (address, port))
                    while True:
                        reply, _ = sock.recvfrom(65535)
                        if reply[:2] == message[:2]:
                            return reply
                except OSError:
                    continue
        return dnswire.servfail(message)

    def on_udp(self, sock: socket.socket, network: tuple) -> None:
        try:
            message, client = sock.recvfrom(65535)
        except OSError:
            return
        reply = self.resolve(network, client[0], message)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, client)
            return
        self.pool.submit(self._forward_to, sock, client, message)

    def _forward_to(self, sock, client, message) -> None:
        reply = self.forward(message)
        if reply is not None:
            with contextlib.suppress(OSError):
                sock.sendto(reply, client)

    def on_tcp(self, listener: socket.socket, network: tuple) -> None:
        try:
            connection, client = listener.accept()
        except OSError:
            return
        self.pool.submit(self._serve_tcp, connection, client[0], network)

    def _serve_tcp(self, connection: socket.socket, client: str, network: tuple) -> None:
        with connection:
            connection.settimeout(5)
            try:
                while header := _read_exactly(connection, 2):
                    message = _read_exactly(connection, struct.unpack("!H", header)[0])
                    if message is None:
                        return
                    reply = self.resolve(network, client, message) or self.forward_tcp(message)
                    if reply is None:
                        return
                    connection.sendall(struct.pack("!H", len(reply)) + reply)
            except OSError:
                return

    def forward_tcp(self, message: bytes) -> bytes | None:
        for address, port in self.upstreams:
            try:
                with socket.create_connection((address, port), UPSTREAM_TIMEOUT) as upstream:
                    upstream.sendall(struct.pack("!H", len(message)) + message)
                    header = _read_exactly(upstream, 2)
                    if header:
                        return _read_exactly(upstream, struct.unpack("!H", header)[0])
            except OSError:
                continue
        return dnswire.servfail(message)

    def serve(self) -> None:
        control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path = self.root / SOCKET
        staging = path.with_name(f".{SOCKET}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        old_umask = os.umask(0o077)
        control.bind(str(staging))
        os.umask(old_umask)
        control.listen(16)
        self.sync()
        (self.root / PIDFILE).write_text(f"{os.getpid()}\n")
        os.replace(staging, path)  # appears only once it answers
        self.selector.register(control, selectors.EVENT_READ, ("control", None))
        while True:
            for key, _ in self.selector.select():
                kind, network = key.data
                if kind == "udp":
                    self.on_udp(key.fileobj, network)
                elif kind == "tcp":
                    self.on_tcp(key.fileobj, network)
                else:
                    self.on_control(key.fileobj)

    def on_control(self, control: socket.socket) -> None:
        connection, _ = control.accept()
        with connection:
            connection.settimeout(5)
            with contextlib.suppress(OSError):
                if connection.recv(64).strip() == b"sync":
                    self.sync()
                    connection.sendall(b"ok\n")


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, MAX_TCP_MESSAGE))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def upstream_servers() -> list[tuple[str, int]]:
    configured = os.environ.get("BERTH_DNS_UPSTREAM")
    if configured:
        entries = [e.strip() for e in configured.split(",") if e.strip()]
    else:
        path = Path(os.environ.get("BERTH_DNS_RESOLV_CONF", "/etc/resolv.conf"))
        try:
            lines = path.read_text().splitlines()
        except OSError:
            lines = []
        entries = [line.split()[1] for line in lines
                   if line.startswith("nameserver") and len(line.split()) > 1]
    servers = []
    for entry in entries:
        address, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        with contextlib.suppress(ValueError):
            servers.append((str(ipaddress.IPv4Address(address)), int(port or 53)))
    return servers


# the runtime's side
def ensure(root: Path) -> None:
    """Have this root's resolver running and serving every current network."""
    try:
        _sync(root)
        return
    except OSError:
        pass
    with locked(root / "dns.lock"):
        try:
            _sync(root)
            return
        except OSError:
            (root / SOCKET).unlink(missing_ok=True)  # a dead resolver's
            _spawn(root)
        deadline = time.monotonic() + 10
        while not (root / SOCKET).exists():
            if time.monotonic() > deadline:
                raise OSError("the DNS resolver did not start; see dns.log")
            time.sleep(0.01)
        _sync(root)


def _sync(root: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(str(root / SOCKET))
        connection.sendall(b"sync\n")
        if connection.recv(16).strip() != b"ok":
            raise OSError("the DNS resolver did not answer")


def _spawn(root: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("BERTH_DNS_UPSTREAM", "BERTH_DNS_RESOLV_CONF"):
        if name in os.environ:
            env[name] = os.environ[name]
    with open(root / "dns.log", "ab") as log:
        subprocess.Popen([sys.executable, "-m", "workers.engine.network.dns", str(root)],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
                         env=env, close_fds=True, start_new_session=True)


def running(root: Path) -> int | None:
    try:
        pid = int((root / PIDFILE).read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"workers.engine.network.dns" in cmdline else None


def stop(root: Path) -> None:
    pid = running(root)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    (root / SOCKET).unlink(missing_ok=True)
    (root / PIDFILE).unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m workers.engine.network.dns <engine root>/network",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.current_thread().name = "dns"
    Server(Path(argv[1]).resolve()).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
