"""The runtime's side of networking: a container's namespace, its /etc files, its report.

Called by workers/engine/runtime.py at create (after the container's directory
exists) and at remove, so the namespace lives as long as the container, across
every run the restart policy makes.
"""

import contextlib
import json
import os
from pathlib import Path

from .. import state
from . import names
from .errors import NetworkError

RESOLV_KEEP = ("search", "domain", "options")


def attach(runtime, container_id: str, spec: dict) -> None:
    """Plumb the new container's network; on refusal (NetworkError) the container is
    removed again."""
    path = runtime.existing(container_id)
    config = json.loads((path / "config.json").read_text())
    try:
        _check_host_mode(spec, config)
        doc = runtime.networks.attach(container_id, {**spec, "hostname": config["hostname"]})
        config.update(network_mode=doc["network_mode"], netns=doc["netns"])
        _write_json(path / "config.json", config)
        write_etc_files(path, doc, config["hostname"])
    except (NetworkError, OSError) as exc:
        runtime.networks.release(container_id)
        runtime.remove(container_id, force=True)
        raise NetworkError(str(exc)) from None
    record(path, doc)


def record(container_dir: Path, doc: dict) -> None:
    """Save what the container's reports say about its network, and have it reported."""
    _write_json(container_dir / state.NETWORK_FILE, report(doc))
    state.write_state(container_dir)


def report(doc: dict) -> dict:
    """What the container's state (and so its reports) says about its network."""
    return {
        "network_mode": doc["network_mode"],
        "networks": {e["network"]: {"ip": e["ip"], "prefixlen": e["prefixlen"],
                                    "gateway": e["gateway"], "mac": e["mac"],
                                    "aliases": e["aliases"], "ifname": e["ifname"]}
                     for e in doc["endpoints"]},
        "ports": [dict(p) for p in doc["ports"]],
    }


def _check_host_mode(spec: dict, config: dict) -> None:
    if spec.get("network_mode") != names.HOST_MODE:
        return
    changed = [name for name in config.get("sysctls") or {} if name.startswith("net.")]
    if changed:
        raise NetworkError(f"sysctl {changed[0]} would change the host's network "
                           "(network mode host)")


def write_etc_files(container_dir: Path, doc: dict, hostname: str) -> None:
    """/etc/hosts gets the container's own address, as Docker writes it; on user
    networks /etc/resolv.conf points at the embedded resolver on the gateway; in
    host mode both are the host's."""
    if doc["network_mode"] == names.HOST_MODE:
        _copy_host_file("/etc/hosts", container_dir / "hosts")
        _copy_host_file("/etc/resolv.conf", container_dir / "resolv.conf")
        return
    if not doc["endpoints"]:
        return
    hosts = container_dir / "hosts"
    lines = [f"{e['ip']}\t{hostname}" for e in doc["endpoints"][:1]]
    _rewrite(hosts, _without_own(hosts.read_text(), hostname) + "".join(f"{x}\n" for x in lines))
    resolver = next((e["gateway"] for e in doc["endpoints"] if not e["default"]), None)
    if resolver:
        _rewrite(container_dir / "resolv.conf", resolv_conf(resolver))


def _without_own(text: str, hostname: str) -> str:
    kept = [line for line in text.splitlines(keepends=True)
            if not (line.split()[1:2] == [hostname] and not line.startswith(("127.", "::1")))]
    return "".join(kept)


def resolv_conf(nameserver: str, source: str = "/etc/resolv.conf") -> str:
    try:
        lines = Path(source).read_text().splitlines()
    except OSError:
        lines = []
    kept = [line for line in lines if line.split()[:1] and line.split()[0] in RESOLV_KEEP]
    return "\n".join([f"nameserver {nameserver}", *kept]) + "\n"


def _copy_host_file(source: str, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        _rewrite(target, Path(source).read_text())


def _rewrite(path: Path, text: str) -> None:
    # In place, not by rename: a running container has this very inode bind-mounted.
    with open(path, "r+" if path.exists() else "w") as handle:
        handle.write(text)
        handle.truncate()


def _write_json(path: Path, document: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)
