"""Bridge networks for real: veths, addresses, iptables, the embedded DNS, busybox clients.

Every kernel name (links, chains) carries this session's prefix, so sessions can run
side by side; each test's network state is purged even when it fails, and a crashed
session's leftovers are removed at the next session's start.
"""

import contextlib
import os
import re
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from pyroute2 import IPRoute

from tests.conftest import free_port
from workers.engine.bootstrap import BUSYBOX_REFERENCE
from workers.engine.network import dns, firewall, links, names, netns
from workers.engine.runtime import RuntimeError_
from workers.engine.state import LIVE

pytestmark = pytest.mark.usefixtures("needs_root")

# This session's engine tests use e<pid>; agents of its stack use t<pid> (tests/conftest.py).
SESSION_PREFIX = f"e{os.getpid():06x}"
STALE_LINK = re.compile(r"^([etu])([0-9a-f]{6})[0vpoq-]")
STALE_CHAIN = re.compile(r"^:([ETU])([0-9A-F]{6})-", re.M)


def _dead(pid_hex: str) -> bool:
    pid = int(pid_hex, 16)
    return pid != os.getpid() and not Path(f"/proc/{pid}").exists()


def _purge_stale_sessions() -> None:
    """Links and chains of test sessions whose process is gone (a crashed run)."""
    for name in links.links_named(lambda n: bool(STALE_LINK.match(n))):
        if _dead(STALE_LINK.match(name).group(2)):
            links.remove_link(name)
    listing = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
    for kind, pid_hex in set(STALE_CHAIN.findall(listing)):
        if _dead(pid_hex.lower()):
            with _prefix(f"{kind.lower()}{pid_hex.lower()}"):
                firewall.remove_all()


@contextlib.contextmanager
def _prefix(value: str):
    saved = os.environ.get("BERTH_NET_PREFIX")
    os.environ["BERTH_NET_PREFIX"] = value
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("BERTH_NET_PREFIX", None)
        else:
            os.environ["BERTH_NET_PREFIX"] = saved


@pytest.fixture(scope="session")
def session_prefix():
    _purge_stale_sessions()
    return SESSION_PREFIX


@pytest.fixture
def net(runtime, session_prefix, monkeypatch):
    """The runtime, with this session's names; everything it plumbed is removed after."""
    monkeypatch.setenv("BERTH_NET_PREFIX", session_prefix)
    yield runtime
    for container_id in runtime.ids():
        if runtime.state(container_id)["state"] in LIVE:
            runtime.stop(container_id, timeout=0)
    runtime.networks.purge()


def create(runtime, name, *args, **spec):
    runtime.create(name, {"image": BUSYBOX_REFERENCE, "args": list(args), "name": name,
                          **spec})
    return runtime.state(name)


def run(runtime, name, *args, **spec) -> tuple[dict, str]:
    create(runtime, name, *args, **spec)
    runtime.start(name)
    assert runtime.wait(name, 30)
    return runtime.state(name), runtime.logs(name)


def start(runtime, name, *args, **spec) -> dict:
    create(runtime, name, *args, **spec)
    runtime.start(name)
    return runtime.state(name)


def wait_for_log(runtime, name, text, timeout=10) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in (output := runtime.logs(name)):
            return output
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {name}'s log: {runtime.logs(name)!r}")


def on(network, **extra) -> dict:
    return {"network_mode": network, "networks": [{"name": network, **extra}]}


RESOLVE = "nslookup {0} | awk '/^Address: /{{print $2}}' | tail -1".format
HTTPD = "mkdir -p /www && echo hello-from-$(hostname) > /www/index.html && httpd -f -p 80 -h /www"


def test_two_containers_reach_each_other_by_name(net):
    net.networks.create("app")
    start(net, "web", "sh", "-c", f"{HTTPD} & nc -l -p 7000; wait", hostname="web",
          **on("app", aliases=["www"]))
    address = net.state("web")["networks"]["app"]["ip"]
    # Debian's static busybox wget crashes resolving names in an image without
    # glibc's shared libraries (and with -T), so wget gets the address nslookup
    # found; nc and ping resolve the name themselves.
    state, output = run(net, "client", "sh", "-c",
                        "nslookup web; nslookup www; ping -c 1 -W 2 www; "
                        f"timeout 5 wget -q -O - http://$({RESOLVE('web')})/; "
                        "echo over-nc | nc web 7000", **on("app"))
    assert state["exit_code"] == 0, output
    assert output.count(address) >= 3, output
    assert "hello-from-web" in output
    wait_for_log(net, "web", "over-nc")


def test_names_and_traffic_stay_inside_their_network(net):
    net.networks.create("left")
    net.networks.create("right")
    start(net, "target", "sh", "-c", HTTPD, hostname="target", **on("right"))
    target = net.state("target")["networks"]["right"]["ip"]
    _, inside = run(net, "neighbour", "timeout", "5", "wget", "-q", "-O", "-", f"http://{target}/",
                    **on("right"))
    assert "hello-from-target" in inside  # the same request works from its own network
    state, outside = run(net, "stranger", "sh", "-c",
                         f"nslookup target; timeout 3 wget -q -O - http://{target}/ "
                         "|| echo BLOCKED", **on("left"))
    assert "hello-from-target" not in outside
    assert "BLOCKED" in outside
    assert target not in outside.split("BLOCKED")[0].split("Name:")[-1]
    gateway = net.state("target")["networks"]["right"]["gateway"]
    _, asked = run(net, "snoop", "nslookup", "target", gateway, **on("left"))
    assert target not in asked  # the other network's resolver refuses strangers


def test_the_resolver_answers_over_tcp(net):
    from workers.engine.network import dnswire

    net.networks.create("tcpdns")
    create(net, "named", "true", **on("tcpdns", aliases=["also-named"]))
    link = net.state("named")["networks"]["tcpdns"]
    question = (b"\x00\x07\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                b"\x0aalso-named\x00\x00\x01\x00\x01")

    def ask():  # from the container's own namespace: the resolver serves its network only
        with socket.create_connection((link["gateway"], 53), timeout=5) as sock:
            sock.sendall(len(question).to_bytes(2, "big") + question)
            size = int.from_bytes(sock.recv(2), "big")
            answer = b""
            while len(answer) < size:
                answer += sock.recv(size - len(answer))
            return answer

    answer = netns.run_in(Path(net.config("named")["netns"]), ask)
    assert answer[:2] == b"\x00\x07" and answer[7] == 1, answer
    assert answer.endswith(socket.inet_aton(link["ip"]))
    assert dnswire.Question(question).name == "also-named"


def host_address() -> str:
    with IPRoute() as ipr:
        for addr in ipr.get_addr(family=2):
            address = addr.get_attr("IFA_ADDRESS")
            label = addr.get_attr("IFA_LABEL") or ""
            if not address.startswith("127.") and not names.is_ours(label):
                return address
    pytest.skip("the host has no non-loopback IPv4 address")


def fetch(url: str, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_published_port_from_the_host_on_loopback_and_its_address(net):
    fixed = free_port()
    start(net, "site", "sh", "-c", HTTPD, hostname="site", network_mode="bridge",
          ports=[{"container_port": 80, "host_port": fixed},
                 {"container_port": 80, "host_port": 0, "host_ip": "127.0.0.1"}])
    ports = net.state("site")["ports"]
    ephemeral = ports[1]["host_port"]
    assert ports[0]["host_port"] == fixed and ephemeral > 0
    assert "hello-from-site" in fetch(f"http://127.0.0.1:{fixed}/")
    assert "hello-from-site" in fetch(f"http://{host_address()}:{fixed}/")
    assert "hello-from-site" in fetch(f"http://127.0.0.1:{ephemeral}/")
    with pytest.raises(OSError):  # published on 127.0.0.1 only
        urllib.request.urlopen(f"http://{host_address()}:{ephemeral}/", timeout=2)


def test_published_udp_port(net):
    port = free_port()
    start(net, "udp", "sleep", "30", network_mode="bridge",
          ports=[{"container_port": 5000, "protocol": "udp", "host_port": port}])

    def listen():  # busybox nc has no -u: the test listens in the container's namespace
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("0.0.0.0", 5000))
        return sock

    with netns.run_in(Path(net.config("udp")["netns"]), listen) as server:
        server.settimeout(0.2)
        received = b""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(25):
                sock.sendto(b"datagram", ("127.0.0.1", port))
                with contextlib.suppress(TimeoutError):
                    received, peer = server.recvfrom(100)
                    break
    assert received == b"datagram"
    assert peer[0] == net.state("udp")["networks"]["bridge"]["gateway"]  # masqueraded


def test_a_taken_host_port_is_a_clear_error(net):
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen(1)
        taken = listener.getsockname()[1]
        with pytest.raises(RuntimeError_, match="already in use on the host"):
            create(net, "late", "true", network_mode="bridge",
                   ports=[{"container_port": 80, "host_port": taken}])
    assert "late" not in net.ids()
    port = free_port()
    create(net, "first", "true", network_mode="bridge",
           ports=[{"container_port": 80, "host_port": port}])
    with pytest.raises(RuntimeError_, match="already published by another container"):
        create(net, "second", "true", network_mode="bridge",
               ports=[{"container_port": 81, "host_port": port}])


@contextlib.contextmanager
def outside_host(tmp_path):
    """A network namespace playing a machine beyond the host, on a /30 of its own."""
    octet = os.getpid() % 250
    host_side, far_side = f"198.18.{octet}.1", f"198.18.{octet}.2"
    path = tmp_path / "outside-netns"
    veth, peer = f"{SESSION_PREFIX}o", f"{SESSION_PREFIX}q"
    netns.create(path, setup=links.loopback_up)
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=veth, kind="veth", peer=peer)
            fd = os.open(path, os.O_RDONLY)
            ipr.link("set", index=links.index(ipr, peer), net_ns_fd=fd)
            os.close(fd)
            ipr.addr("add", index=links.index(ipr, veth), address=host_side, prefixlen=30)
            ipr.link("set", index=links.index(ipr, veth), state="up")

        def inside():
            with IPRoute() as ipr:
                index = links.index(ipr, peer)
                ipr.addr("add", index=index, address=far_side, prefixlen=30)
                ipr.link("set", index=index, state="up")
            listener = socket.socket()
            listener.bind((far_side, 8080))
            listener.listen(4)
            return listener

        yield host_side, far_side, netns.run_in(path, inside)
    finally:
        links.remove_link(veth)
        netns.remove(path)


def test_egress_is_masqueraded_to_an_outside_host(net, tmp_path):
    with outside_host(tmp_path) as (host_side, far_side, listener):
        peers = []

        def accept():
            listener.settimeout(20)
            with contextlib.suppress(OSError):
                connection, peer = listener.accept()
                peers.append(peer[0])
                connection.sendall(b"HTTP/1.0 200 OK\r\n\r\noutside-says-hi\n")
                connection.close()
            listener.close()

        thread = threading.Thread(target=accept)
        thread.start()
        net.networks.create("egress")
        state, output = run(net, "leaver", "timeout", "10", "wget", "-q", "-O", "-",
                            f"http://{far_side}:8080/", **on("egress"))
        thread.join()
    assert "outside-says-hi" in output, output
    assert peers == [host_side]  # the container's address never left the host


def kernel_leftovers(runtime, prefix: str) -> dict:
    root = runtime.networks.root
    return {
        "veths": links.links_named(lambda n: n.startswith((f"{prefix}v", f"{prefix}p"))),
        "dnat": subprocess.run(["iptables", "-t", "nat", "-S", names.chain("DNAT")],
                               capture_output=True, text=True).stdout.count("DNAT --to"),
        "leases": sum(len(runtime.networks._pool(n).leases())
                      for n in runtime.networks.networks()),
        "netns": sorted(p.name for p in (root / "netns").iterdir()),
        "endpoints": runtime.networks.endpoints(),
    }


CLEAN = {"veths": [], "dnat": 0, "leases": 0, "netns": [], "endpoints": []}


def test_create_remove_cycles_leave_nothing_behind(net, session_prefix):
    cycles = int(os.environ.get("BERTH_NET_CYCLES", "40"))
    net.networks.create("churn")
    for number in range(cycles):
        name = f"c{number}"
        network = {"network_mode": "bridge"} if number % 2 else on("churn", aliases=["x"])
        create(net, name, "sleep", "5", ports=[{"container_port": 80, "host_port": 0}],
               **network)
        if number % 10 == 0:
            net.start(name)
        net.remove(name, force=True)
    assert kernel_leftovers(net, session_prefix) == CLEAN


def test_agent_restart_removes_what_no_container_holds(net, session_prefix):
    create(net, "kept", "true", network_mode="bridge",
           ports=[{"container_port": 80, "host_port": 0}])
    # A crash between plumbing and the container's directory: nothing owns these.
    net.networks.attach("ghost", {"network_mode": "bridge",
                                  "ports": [{"container_port": 80, "host_port": 0}]})
    before = kernel_leftovers(net, session_prefix)
    assert len(before["veths"]) == 2 and before["netns"] == ["ghost", "kept"]
    removed = net.networks.restore(net.ids())
    assert removed["endpoints"] == ["ghost"]
    after = kernel_leftovers(net, session_prefix)
    assert after["netns"] == ["kept"] and after["leases"] == 1 and after["dnat"] == 1
    assert after["veths"] == [names.host_veth("kept", "bridge")]


def test_rules_are_loaded_when_they_change_and_after_an_outside_flush(net, monkeypatch):
    loads = []
    real_run = firewall._run

    def counting_run(*args, stdin=None):
        if args[0].endswith("-restore") and stdin and "-A " in stdin:
            loads.append(stdin)
        return real_run(*args, stdin=stdin)

    monkeypatch.setattr(firewall, "_run", counting_run)
    create(net, "first", "true", network_mode="bridge")
    loaded = len(loads)
    create(net, "plain", "true", network_mode="bridge")  # no port: no rule changes
    net.remove("plain")
    assert len(loads) == loaded
    create(net, "published", "true", network_mode="bridge",
           ports=[{"container_port": 80, "host_port": 0}])
    assert len(loads) == loaded + 1 and kernel_leftovers(net, net_prefix())["dnat"] == 1
    # Someone flushes our chain; an agent start (restore) puts the rules back.
    subprocess.run(["iptables", "-t", "nat", "-F", names.chain("DNAT")], check=True)
    net.networks.restore(net.ids())
    assert kernel_leftovers(net, net_prefix())["dnat"] == 1


def net_prefix() -> str:
    return os.environ["BERTH_NET_PREFIX"]


def test_restarts_keep_the_namespace_and_address(net):
    state, output = run(net, "flaky", "sh", "-c", "ip -4 -o addr show eth0; exit 1",
                        network_mode="bridge", restart="on-failure:2")
    for _ in range(100):
        if net.state("flaky")["state"] == "exited" and net.logs("flaky").count("eth0") == 3:
            break
        net.wait("flaky", 1)
        time.sleep(0.1)
    lines = [line for line in net.logs("flaky").splitlines() if "eth0" in line]
    assert len(lines) == 3 and len(set(lines)) == 1
    assert net.state("flaky")["networks"]["bridge"]["ip"] in lines[0]


def test_modes_host_and_none(net):
    _, host = run(net, "h", "cat", "/proc/net/dev", network_mode="host")
    _, none = run(net, "n", "cat", "/proc/net/dev", network_mode="none")
    with open("/proc/net/dev") as ours:
        host_links = {line.split(":")[0].strip() for line in ours.read().splitlines()[2:]}
    seen = {line.split(":")[0].strip() for line in host.splitlines()[2:]}
    assert seen & host_links == seen and len(seen) > 1
    assert {line.split(":")[0].strip() for line in none.splitlines()[2:]} == {"lo"}
    with pytest.raises(RuntimeError_, match="host's network"):
        create(net, "bad", "true", network_mode="host", sysctls={"net.ipv4.ip_forward": "1"})


def test_static_address_mac_and_hosts_file(net):
    net.networks.create("fixed", subnet="10.213.250.0/24")
    state, output = run(net, "pinned", "sh", "-c", "ip -o link show eth0; cat /etc/hosts "
                        "/etc/resolv.conf", hostname="pinned",
                        **on("fixed", ip="10.213.250.50", mac="02:42:0a:d5:fa:32"))
    assert "02:42:0a:d5:fa:32" in output
    assert "10.213.250.50\tpinned" in output
    assert "nameserver 10.213.250.1" in output
    with pytest.raises(RuntimeError_, match="already in use"):
        create(net, "twin", "true", **on("fixed", ip="10.213.250.50"))


def test_connect_and_disconnect_a_running_container(net):
    net.networks.create("one")
    net.networks.create("two")
    start(net, "svc", "sh", "-c", HTTPD, hostname="svc", **on("one"))
    start(net, "peer", "sleep", "60", **on("two"))
    doc = net.networks.connect("svc", {"name": "two", "aliases": ["api"]})
    assert [e["ifname"] for e in doc["endpoints"]] == ["eth0", "eth1"]
    _, output = run(net, "probe", "sh", "-c", f"timeout 5 wget -q -O - http://$({RESOLVE('api')})/",
                    **on("two"))
    assert "hello-from-svc" in output
    assert {m["name"] for m in net.networks.members("two")} == {"svc", "peer", "probe"}
    net.networks.disconnect("svc", "two")
    _, output = run(net, "probe2", "sh", "-c", "nslookup api || echo GONE", **on("two"))
    assert "GONE" in output


class FakeUpstream:
    """A DNS server on loopback that answers every A question with one address."""

    def __init__(self, answer: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        from workers.engine.network import dnswire

        while True:
            try:
                message, client = self.sock.recvfrom(4096)
            except OSError:
                return
            question = dnswire.Question(message)
            addresses = [self.answer] if question.qtype == dnswire.TYPE_A else []
            self.sock.sendto(question.reply(addresses=addresses), client)

    def close(self):
        self.sock.close()


def test_other_names_are_forwarded_to_the_upstream_servers(net, monkeypatch):
    upstream = FakeUpstream("203.0.113.7")
    monkeypatch.setenv("BERTH_DNS_UPSTREAM", f"127.0.0.1:{upstream.port}")
    dns.stop(net.networks.root)  # a resolver started before this test has other upstreams
    try:
        net.networks.create("fwd")
        _, output = run(net, "asker", "nslookup", "somewhere.example", **on("fwd"))
    finally:
        upstream.close()
    assert "203.0.113.7" in output


def test_engine_down_takes_the_kernel_state_and_start_brings_it_back(net, session_prefix):
    net.networks.create("rebooted")
    port = free_port()
    create(net, "survivor", "sh", "-c", HTTPD, hostname="survivor",
           ports=[{"container_port": 80, "host_port": port}], **on("rebooted"))
    address = net.state("survivor")["networks"]["rebooted"]["ip"]
    net.shutdown()  # what `make down` does once every container has stopped
    assert kernel_leftovers(net, session_prefix)["veths"] == []
    assert not netns.is_mounted(net.networks.netns_path("survivor"))
    assert firewall.chains_present() == []
    net.start("survivor")  # as after a host reboot: plumbed again from the files
    assert net.state("survivor")["networks"]["rebooted"]["ip"] == address
    assert "hello-from-survivor" in fetch(f"http://127.0.0.1:{port}/")
    _, output = run(net, "visitor", "nslookup", "survivor", **on("rebooted"))
    assert address in output


def test_published_port_from_another_machine(net, tmp_path):
    """The outside namespace plays a machine on the host's network: its requests come in
    through PREROUTING, not the host's own OUTPUT path."""
    port = free_port()
    start(net, "public", "sh", "-c", HTTPD, hostname="public", network_mode="bridge",
          ports=[{"container_port": 80, "host_port": port}])
    with outside_host(tmp_path) as (host_side, _, listener):
        listener.close()

        def visit():
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection((host_side, port), timeout=3) as sock:
                        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                        return b"".join(iter(lambda: sock.recv(4096), b""))
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)

        answer = netns.run_in(tmp_path / "outside-netns", visit)
    assert b"hello-from-public" in answer


def test_an_internal_network_has_no_way_out(net, tmp_path):
    net.networks.create("sealed", internal=True)
    with outside_host(tmp_path) as (_, far_side, listener):
        listener.settimeout(0.5)
        _, output = run(net, "inmate", "sh", "-c",
                        f"timeout 3 wget -q -O - http://{far_side}:8080/ || echo NO-WAY-OUT",
                        **on("sealed"))
        with pytest.raises(TimeoutError):
            listener.accept()
        listener.close()
    assert "NO-WAY-OUT" in output
