"""iptables rules in Berth's own chains, rebuilt whole from the engine's files.

Each change renders every Berth chain and loads them with one
`iptables-restore --noflush`: declaring a chain there empties it, so rules of
removed containers vanish, nothing of anyone else's is touched, and the
kernel never holds half a change. The built-in chains only get one jump each.

    filter FORWARD  -> <P>-FORWARD: isolation, replies, published ports, egress
    filter INPUT    -> <P>-INPUT: containers may ask the embedded DNS on their gateway
    nat PREROUTING and OUTPUT (to local addresses) -> <P>-DNAT: published ports
    nat POSTROUTING -> <P>-POSTROUTING: masquerade out, and for 127.0.0.1 and hairpin
"""

import subprocess
from pathlib import Path

from . import names
from .errors import NetworkError

IPTABLES = "iptables"
HOOKS = (
    ("filter", "FORWARD", ["-j", "{FORWARD}"]),
    ("filter", "INPUT", ["-j", "{INPUT}"]),
    ("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "{DNAT}"]),
    ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL", "-j", "{DNAT}"]),
    ("nat", "POSTROUTING", ["-j", "{POSTROUTING}"]),
)
FILTER_CHAINS = ("FORWARD", "ISOLATE", "INPUT")
_hooked: set[str] = set()  # prefixes whose jumps this process has seen in place
# The text this process last loaded, per prefix: a container without published ports
# changes no rule, and skipping its iptables-restore saves a process start each way.
_loaded: dict[str, str] = {}
NAT_CHAINS = ("DNAT", "POSTROUTING")


def _chains() -> dict[str, str]:
    return {role: names.chain(role) for role in FILTER_CHAINS + NAT_CHAINS}


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*args], input=stdin, capture_output=True, text=True, check=False)


def render(networks: list[dict], endpoints: list[dict]) -> str:
    """The restore text for every Berth chain, from networks and container endpoints."""
    c = _chains()
    filter_rules, nat_rules = [], []
    bridges = [n["bridge"] for n in networks]
    for bridge in bridges:
        filter_rules.append(f"-A {c['FORWARD']} -i {bridge} ! -o {bridge} -j {c['ISOLATE']}")
        filter_rules.append(f"-A {c['ISOLATE']} -o {bridge} -j DROP")
    for network in networks:
        bridge, subnet = network["bridge"], network["subnet"]
        if network.get("internal"):  # no way in or out but its own bridge
            filter_rules += [f"-A {c['FORWARD']} -i {bridge} ! -o {bridge} -j DROP",
                             f"-A {c['FORWARD']} -o {bridge} ! -i {bridge} -j DROP"]
        filter_rules += [
            f"-A {c['FORWARD']} -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            f"-A {c['FORWARD']} -o {bridge} -m conntrack --ctstate DNAT -j ACCEPT",
            f"-A {c['FORWARD']} -i {bridge} -o {bridge} -j ACCEPT",
            f"-A {c['FORWARD']} -i {bridge} ! -o {bridge} -j ACCEPT",
            f"-A {c['INPUT']} -i {bridge} -p udp --dport 53 -j ACCEPT",
            f"-A {c['INPUT']} -i {bridge} -p tcp --dport 53 -j ACCEPT",
            # route_localnet must not let a container reach the host's loopback services
            # (CVE-2020-8558): only replies may come in for 127.0.0.0/8.
            f"-A {c['INPUT']} -i {bridge} -d 127.0.0.0/8 -m conntrack "
            "! --ctstate RELATED,ESTABLISHED -j DROP",
        ]
        if network.get("internal"):
            continue
        nat_rules += [
            f"-A {c['POSTROUTING']} -s {subnet} ! -o {bridge} -j MASQUERADE",
            f"-A {c['POSTROUTING']} -o {bridge} -m addrtype --src-type LOCAL -j MASQUERADE",
            f"-A {c['POSTROUTING']} -o {bridge} -s {subnet} -m conntrack --ctstate DNAT "
            f"-j MASQUERADE",
        ]
    for endpoint in endpoints:
        for port in endpoint.get("ports") or []:
            nat_rules.append(_dnat(c["DNAT"], port, endpoint))
    lines = ["*filter"]
    lines += [f":{c[role]} - [0:0]" for role in FILTER_CHAINS]
    lines += filter_rules + ["COMMIT", "*nat"]
    lines += [f":{c[role]} - [0:0]" for role in NAT_CHAINS]
    lines += nat_rules + ["COMMIT", ""]
    return "\n".join(lines)


def _dnat(chain: str, port: dict, endpoint: dict) -> str:
    match = f"-p {port['protocol']} --dport {port['host_port']}"
    if port.get("host_ip") not in (None, "", "0.0.0.0"):
        match = f"-d {port['host_ip']}/32 {match}"
    target = f"{port['ip']}:{port['container_port']}"
    comment = f"-m comment --comment {endpoint['container_id'][:64]}"
    return f"-A {chain} {match} {comment} -j DNAT --to-destination {target}"


def apply(networks: list[dict], endpoints: list[dict]) -> None:
    prefix = names.prefix()
    if prefix not in _hooked:
        _ensure_hooks()
    text = render(networks, endpoints)
    if _loaded.get(prefix) == text:
        return
    _loaded.pop(prefix, None)  # a failed load leaves the kernel unknown
    result = _run(f"{IPTABLES}-restore", "-w", "--noflush", stdin=text)
    if result.returncode != 0:
        raise NetworkError(f"iptables-restore failed: {result.stderr.strip()}")
    _loaded[prefix] = text


def _ensure_hooks() -> None:
    """Our chains, and one jump to each from its built-in chain; checked once per process
    (and again at agent start, which restores), as each check runs iptables."""
    c = _chains()
    declare = "\n".join(["*filter", *(f":{c[r]} - [0:0]" for r in FILTER_CHAINS), "COMMIT",
                         "*nat", *(f":{c[r]} - [0:0]" for r in NAT_CHAINS), "COMMIT", ""])
    missing = [hook for hook in HOOKS if not _has_hook(hook)]
    if not missing:
        _hooked.add(names.prefix())
        return
    _run(f"{IPTABLES}-restore", "-w", "--noflush", stdin=declare)
    for table, builtin, rule in missing:
        rule = [part.format(**c) for part in rule]
        result = _run(IPTABLES, "-w", "-t", table, "-I", builtin, "1", *rule)
        if result.returncode != 0:
            raise NetworkError(f"iptables -t {table} -I {builtin}: {result.stderr.strip()}")
    _hooked.add(names.prefix())


def forget_hooks() -> None:
    """Check the jumps and load the rules again on the next change (someone may have
    flushed the chains)."""
    _hooked.discard(names.prefix())
    _loaded.pop(names.prefix(), None)


def _has_hook(hook) -> bool:
    table, builtin, rule = hook
    rule = [part.format(**_chains()) for part in rule]
    return _run(IPTABLES, "-w", "-t", table, "-C", builtin, *rule).returncode == 0


def remove_all() -> None:
    """Take Berth's chains out of the kernel (hooks first, then the chains)."""
    forget_hooks()
    c = _chains()
    for table, builtin, rule in HOOKS:
        rule = [part.format(**c) for part in rule]
        while _run(IPTABLES, "-w", "-t", table, "-D", builtin, *rule).returncode == 0:
            pass
    for table, roles in (("filter", FILTER_CHAINS), ("nat", NAT_CHAINS)):
        for role in roles:
            _run(IPTABLES, "-w", "-t", table, "-F", c[role])
        for role in roles:
            _run(IPTABLES, "-w", "-t", table, "-X", c[role])


def chains_present() -> list[str]:
    """Berth chains (of this prefix) the kernel holds, for tests and cleanup checks."""
    found = []
    for table in ("filter", "nat"):
        listing = _run(IPTABLES, "-w", "-t", table, "-S").stdout
        found += [line.split()[1] for line in listing.splitlines()
                  if line.startswith("-N ") and line.split()[1].startswith(names.chain(""))]
    return found


def enable_forwarding() -> None:
    try:
        Path("/proc/sys/net/ipv4/ip_forward").write_text("1")
    except OSError as exc:
        raise NetworkError(f"cannot enable IPv4 forwarding: {exc.strerror}") from None
