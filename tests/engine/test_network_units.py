"""The parts of networking that need no kernel state: leases, port checks, DNS messages,
the rules rendered for iptables."""

import ipaddress
import multiprocessing
import socket

import pytest

from workers.engine.network import NetworkError, dnswire, firewall, ports
from workers.engine.network.ipam import Pool


def pool(tmp_path, subnet="10.9.0.0/29", gateway="10.9.0.1"):
    return Pool(tmp_path, "n", subnet, gateway)


def test_leases_survive_a_restart_and_are_never_given_twice(tmp_path):
    first = [pool(tmp_path).lease(f"c{i}") for i in range(3)]
    again = pool(tmp_path)  # a restarted agent reads the same file
    second = [again.lease(f"d{i}") for i in range(2)]
    everything = first + second
    assert len(set(everything)) == 5
    assert "10.9.0.1" not in everything and "10.9.0.0" not in everything
    with pytest.raises(NetworkError, match="no free address"):
        again.lease("one-too-many")
    assert pool(tmp_path).lease("c1") == first[1]  # asking again: the same lease


def test_a_released_address_is_not_reused_at_once(tmp_path):
    leases = pool(tmp_path, "10.9.0.0/28")
    given = leases.lease("a")
    leases.release("a")
    leases.release("a")  # idempotent
    assert leases.lease("b") != given


def test_static_addresses_are_checked(tmp_path):
    leases = pool(tmp_path)
    assert leases.lease("a", "10.9.0.4") == "10.9.0.4"
    for wanted, message in (("10.9.0.4", "already in use"), ("10.9.0.1", "not usable"),
                            ("10.8.0.9", "not usable"), ("nonsense", "invalid")):
        with pytest.raises(NetworkError, match=message):
            leases.lease("b", wanted)


def _lease_many(directory, owner, count, queue):
    leases = Pool(directory, "n", "10.10.0.0/22", "10.10.0.1")
    queue.put([leases.lease(f"{owner}-{i}") for i in range(count)])


def test_concurrent_processes_never_share_an_address(tmp_path):
    queue = multiprocessing.get_context("fork").Queue()
    workers = [multiprocessing.get_context("fork").Process(
        target=_lease_many, args=(tmp_path, f"p{n}", 60, queue)) for n in range(4)]
    for worker in workers:
        worker.start()
    given = [address for _ in workers for address in queue.get(timeout=30)]
    for worker in workers:
        worker.join()
    assert len(given) == 240 and len(set(given)) == 240


def test_ports_are_validated_and_taken_ones_refused():
    assert ports.normalise([{"container_port": "80", "host_ip": "0.0.0.0"}]) == [
        {"container_port": 80, "protocol": "tcp", "host_ip": "", "host_port": 0}]
    for bad, message in (({"container_port": 0}, "container port"),
                         ({"container_port": 80, "protocol": "sctp"}, "protocol"),
                         ({"container_port": 80, "host_port": 70000}, "host port"),
                         ({"container_port": 80, "host_ip": "::1"}, "IPv4")):
        with pytest.raises(NetworkError, match=message):
            ports.normalise([bad])
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        taken = listener.getsockname()[1]
        with pytest.raises(NetworkError, match="already in use on the host"):
            ports.assign(ports.normalise([{"container_port": 1, "host_port": taken}]), [])
    published = ports.assign(ports.normalise([{"container_port": 1, "host_port": 0}]), [])
    with pytest.raises(NetworkError, match="already published"):
        ports.assign([{**published[0], "host_ip": "127.0.0.1"}], published)


def query(name: str, qtype: int = dnswire.TYPE_A) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + labels + b"\0" + \
        qtype.to_bytes(2, "big") + b"\x00\x01"


def test_dns_answers_carry_the_question_and_addresses():
    question = dnswire.Question(query("Web.Example"))
    assert question.name == "web.example" and question.qtype == dnswire.TYPE_A
    reply = question.reply(addresses=["10.0.0.7"])
    assert reply[:2] == b"\x12\x34" and reply[7] == 1  # id kept, one answer
    assert reply.endswith(ipaddress.IPv4Address("10.0.0.7").packed)
    assert dnswire.servfail(b"junk") is None
    assert dnswire.ptr_address("7.0.0.10.in-addr.arpa") == "10.0.0.7"


def test_rules_isolate_every_pair_of_networks_and_publish_ports():
    networks = [{"name": "a", "bridge": "ba", "subnet": "10.1.0.0/24"},
                {"name": "b", "bridge": "bb", "subnet": "10.2.0.0/24"}]
    text = firewall.render(networks, [{"container_id": "c1", "ports": [
        {"protocol": "tcp", "host_ip": "127.0.0.1", "host_port": 8080, "ip": "10.1.0.2",
         "container_port": 80}]}])
    assert "-i ba ! -o ba -j" in text and "-o bb -j DROP" in text
    assert ("-d 127.0.0.1/32 -p tcp --dport 8080 -m comment --comment c1 -j DNAT "
            "--to-destination 10.1.0.2:80") in text
    assert "-s 10.2.0.0/24 ! -o bb -j MASQUERADE" in text


def test_internal_networks_get_no_way_out():
    text = firewall.render([{"name": "i", "bridge": "bi", "subnet": "10.3.0.0/24",
                             "internal": True}], [])
    assert "-i bi ! -o bi -j DROP" in text and "-o bi ! -i bi -j DROP" in text
    assert "MASQUERADE" not in text
