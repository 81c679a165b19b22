"""Berth rows in the JSON shapes dockerd answers with (types as the Go client decodes them).

Times in inspect answers are RFC 3339 strings (``0001-01-01T00:00:00Z`` for
never), in list answers unix seconds; ``Names`` start with ``/``.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from django.utils import timezone

from apps.containers import options as container_options
from apps.containers.choices import State
from apps.containers.models import Container
from apps.dockerapi.lookup import as_typed, familiar
from apps.images.models import Image

NEVER = "0001-01-01T00:00:00Z"
DOCKER_STATES = {
    State.PENDING: "created",
    State.CREATED: "created",
    State.RUNNING: "running",
    State.RESTARTING: "restarting",
    State.PAUSED: "paused",
    State.EXITED: "exited",
    State.REMOVING: "removing",
    State.UNKNOWN: "dead",
}
DEFAULT_SHM = 64 * 1024 * 1024


def rfc3339(value: datetime | None) -> str:
    if value is None:
        return NEVER
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def unix(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


def human_duration(seconds: float) -> str:
    """As Docker's go-units HumanDuration: "Less than a second", "5 minutes", "2 hours"."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    minutes, hours = seconds / 60, seconds / 3600
    if minutes < 1:
        return f"{int(seconds)} seconds"
    if int(minutes) == 1:
        return "About a minute"
    if minutes < 60:
        return f"{int(minutes)} minutes"
    if round(hours) == 1:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    days = hours / 24
    if days < 14:
        return f"{int(days)} days"
    if days < 60:
        return f"{int(days / 7)} weeks"
    if days < 365 * 2:
        return f"{int(days / 30)} months"
    return f"{int(days / 365)} years"


def _ago(value: datetime | None) -> str:
    if value is None:
        return ""
    return human_duration((timezone.now() - value).total_seconds())


def docker_state(container: Container) -> str:
    return DOCKER_STATES.get(container.state, "dead")


def status_text(container: Container) -> str:
    state = container.state
    if state in (State.PENDING, State.CREATED):
        return "Created"
    if state == State.RUNNING:
        return f"Up {_ago(container.started_at)}"
    if state == State.PAUSED:
        return f"Up {_ago(container.started_at)} (Paused)"
    if state == State.RESTARTING:
        return f"Restarting ({container.exit_code or 0}) {_ago(container.finished_at)} ago"
    if state == State.EXITED:
        return f"Exited ({container.exit_code or 0}) {_ago(container.finished_at)} ago"
    if state == State.REMOVING:
        return "Removal In Progress"
    return "Dead"


def image_config(image: Image | None) -> dict:
    config = image.config if image is not None else {}
    return config if isinstance(config, dict) else {}


def effective_process(container: Container) -> tuple[list[str], list[str]]:
    """(Entrypoint, Cmd) as the container runs them: its own, else the image's."""
    config = image_config(container.image)
    options = container.options or {}
    entrypoint = options.get("entrypoint")
    if entrypoint is not None:  # [] cleared the image's, and its Cmd with it
        return list(entrypoint), list(container.command)
    return list(config.get("Entrypoint") or []), list(container.command or config.get("Cmd") or [])


def summary(container: Container, net=None) -> dict:
    """One ``GET /containers/json`` item; ``net`` is its ContainerNetwork row, if reported."""
    entrypoint, cmd = effective_process(container)
    image = container.image
    return {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": as_typed(container.image_reference),
        "ImageID": image.image_id if image else "",
        "Command": shlex.join(entrypoint + cmd),
        "Created": unix(container.created_at),
        "Ports": port_list(container, net),
        "Labels": dict(container.labels or {}),
        "State": docker_state(container),
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": network_mode(container)},
        "NetworkSettings": {"Networks": networks(container, net)},
        "Mounts": mounts(container),
    }


def network_mode(container: Container) -> str:
    return (container.options or {}).get("network") or "bridge"


def _ports_of(container: Container, net) -> list[dict]:
    """Published ports as the agent bound them (ephemeral ones filled in), else as asked."""
    reported = list(net.ports) if net is not None and net.ports else []
    return reported or list((container.options or {}).get("ports") or [])


def port_list(container: Container, net) -> list[dict]:
    items = []
    for port in _ports_of(container, net):
        item = {"PrivatePort": port.get("container_port"), "Type": port.get("protocol", "tcp")}
        if port.get("host_port"):
            item.update(IP=port.get("host_ip") or "0.0.0.0", PublicPort=port["host_port"])
        items.append(item)
    return items


def port_map(container: Container, net) -> dict:
    """``{"80/tcp": [{"HostIp", "HostPort"}]}`` (HostPort a string, as the Go client wants)."""
    result: dict[str, list] = {}
    for port in _ports_of(container, net):
        key = f"{port.get('container_port')}/{port.get('protocol', 'tcp')}"
        binding = {
            "HostIp": port.get("host_ip") or "",
            "HostPort": str(port.get("host_port") or ""),
        }
        result.setdefault(key, []).append(binding)
    return result


def networks(container: Container, net) -> dict:
    reported = net.networks if net is not None and isinstance(net.networks, dict) else {}
    result = {}
    for engine_name, link in reported.items():
        link = link if isinstance(link, dict) else {}
        # A team network's engine name is "<team slug>.<name>" (apps.networks.services).
        name = engine_name.removeprefix(f"{container.team.slug}.")
        result[name] = {
            "IPAMConfig": None,
            "Links": None,
            "Aliases": link.get("aliases") or None,
            "MacAddress": link.get("mac") or "",
            "NetworkID": engine_name,
            "EndpointID": "",
            "Gateway": link.get("gateway") or "",
            "IPAddress": link.get("ip") or "",
            "IPPrefixLen": link.get("prefixlen") or 0,
            "IPv6Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DriverOpts": None,
            "DNSNames": None,
        }
    return result


def mounts(container: Container) -> list[dict]:
    items = []
    for mount in (container.options or {}).get("mounts") or []:
        kind = mount.get("type", "volume")
        item = {
            "Type": kind,
            "Source": mount.get("source", ""),
            "Destination": mount.get("target", ""),
            "Mode": "ro" if mount.get("read_only") else "",
            "RW": not mount.get("read_only"),
            "Propagation": "rprivate" if kind == "bind" else "",
        }
        if kind == "volume":
            item.update(Name=mount.get("source", ""), Driver="local")
        items.append(item)
    return items


def inspect(container: Container, net=None) -> dict:
    """``GET /containers/{id}/json``: the ContainerJSON the CLI and docker-py read."""
    entrypoint, cmd = effective_process(container)
    process = entrypoint + cmd
    state = docker_state(container)
    image = container.image
    return {
        "Id": container.id,
        "Created": rfc3339(container.created_at),
        "Path": process[0] if process else "",
        "Args": process[1:],
        "State": {
            "Status": state,
            "Running": state in ("running", "paused", "restarting"),
            "Paused": state == "paused",
            "Restarting": state == "restarting",
            "OOMKilled": bool(container.oom_killed),
            "Dead": state == "dead",
            "Pid": (container.pid or 0) if state in ("running", "paused") else 0,
            "ExitCode": container.exit_code or 0,
            "Error": container.error or "",
            "StartedAt": rfc3339(container.started_at),
            "FinishedAt": rfc3339(container.finished_at),
        },
        "Image": image.image_id if image else "",
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": f"/{container.name}",
        "RestartCount": container.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": host_config(container, net),
        "GraphDriver": {"Name": "overlay", "Data": None},
        "Mounts": mounts(container),
        "Config": config(container, entrypoint, cmd),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": "",
            "Ports": port_map(container, net),
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": "",
            "Gateway": "",
            "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "IPAddress": _first(container, net, "IPAddress"),
            "IPPrefixLen": _first(container, net, "IPPrefixLen") or 0,
            "IPv6Gateway": "",
            "MacAddress": _first(container, net, "MacAddress"),
            "Networks": networks(container, net),
        },
        "Berth": {
            "Team": container.team.slug,
            "Host": container.host.name,
            "State": container.state,
        },
    }


def _first(container: Container, net, key: str):
    links = list(networks(container, net).values())
    return links[0][key] if links else ""


def config(container: Container, entrypoint: list[str], cmd: list[str]) -> dict:
    image = image_config(container.image)
    options = container_options.effective(container.options)
    labels = {**(image.get("Labels") or {}), **(container.labels or {})}
    result = {
        "Hostname": options["hostname"] or container.short_id,
        "Domainname": "",
        "User": options["user"] or image.get("User") or "",
        "AttachStdin": False,
        "AttachStdout": not options["open_stdin"],
        "AttachStderr": not options["open_stdin"],
        "ExposedPorts": image.get("ExposedPorts") or None,
        "Tty": bool(options["tty"]),
        "OpenStdin": bool(options["open_stdin"]),
        "StdinOnce": False,
        "Env": [*(image.get("Env") or []), *container.env],
        "Cmd": cmd or None,
        "Image": as_typed(container.image_reference),
        "Volumes": image.get("Volumes") or None,
        "WorkingDir": options["working_dir"] or image.get("WorkingDir") or "",
        "Entrypoint": entrypoint or None,
        "OnBuild": None,
        "Labels": labels,
    }
    stop_signal = options["stop_signal"] or image.get("StopSignal")
    if stop_signal:
        result["StopSignal"] = stop_signal
    if options["stop_timeout"] is not None:
        result["StopTimeout"] = options["stop_timeout"]
    return result


def restart_policy(value: str) -> dict:
    name, _, count = (value or "no").partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def host_config(container: Container, net=None) -> dict:
    options = container_options.effective(container.options)
    log_config = {}
    if options["log_max_size"] is not None:
        log_config["max-size"] = str(options["log_max_size"])
    if options["log_max_files"] is not None:
        log_config["max-file"] = str(options["log_max_files"])
    security = []
    if options["no_new_privileges"]:
        security.append("no-new-privileges")
    if options["seccomp"] != "default":
        security.append(f"seccomp={options['seccomp']}")
    cpus = options["cpus"]
    return {
        "Binds": [
            f"{m['Source']}:{m['Destination']}{':ro' if not m['RW'] else ''}"
            for m in mounts(container)
            if m["Type"] in ("bind", "volume")
        ]
        or None,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": log_config},
        "NetworkMode": network_mode(container),
        "PortBindings": {
            f"{port.get('container_port')}/{port.get('protocol', 'tcp')}": [
                {"HostIp": port.get("host_ip") or "", "HostPort": str(port.get("host_port") or "")}
            ]
            for port in (container.options or {}).get("ports") or []
        },
        "RestartPolicy": restart_policy(container.restart_policy),
        "AutoRemove": bool(container.auto_remove),
        "VolumeDriver": "",
        "VolumesFrom": None,
        "ConsoleSize": [0, 0],
        "CapAdd": None,
        "CapDrop": None,
        "CgroupnsMode": "private",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": list(options["extra_hosts"]) or None,
        "GroupAdd": None,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": None,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": False,
        "PublishAllPorts": False,
        "ReadonlyRootfs": bool(options["read_only"]),
        "SecurityOpt": security or None,
        "Tmpfs": dict(options["tmpfs"]) or None,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": DEFAULT_SHM,
        "Sysctls": dict(options["sysctls"]) or None,
        "Runtime": "berth",
        "Isolation": "",
        "CpuShares": options["cpu_shares"] or 0,
        "Memory": options["memory"] or 0,
        "NanoCpus": round(cpus * 1e9) if cpus else 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": options["cpuset_cpus"] or "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": None,
        "DeviceRequests": None,
        "MemoryReservation": 0,
        "MemorySwap": options["memory_swap"] or 0,
        "MemorySwappiness": None,
        "OomKillDisable": False,
        "PidsLimit": options["pids_limit"],
        "Ulimits": None,
        "MaskedPaths": None,
        "ReadonlyPaths": None,
    }


# ---- images -------------------------------------------------------------------------------


def repo_tags(rows: list[Image]) -> list[str]:
    tags = []
    for row in rows:
        if row.reference.startswith("sha256:") or "@" in row.reference:
            continue
        tag = familiar(row.reference)
        if tag not in tags:
            tags.append(tag)
    return tags


def repo_digests(rows: list[Image]) -> list[str]:
    digests = []
    for row in rows:
        for item in row.repo_digests or []:
            text = familiar(item)
            if text not in digests:
                digests.append(text)
    return digests


def image_summary(rows: list[Image]) -> dict:
    """One ``GET /images/json`` item: the rows (hosts, teams, tags) of one image id."""
    first = rows[0]
    config = image_config(first)
    return {
        "Id": first.image_id or first.digest,
        "ParentId": "",
        "RepoTags": repo_tags(rows),
        "RepoDigests": repo_digests(rows),
        "Created": unix(first.created),
        "Size": first.size,
        "SharedSize": -1,
        "VirtualSize": first.size,
        "Labels": config.get("Labels") or {},
        "Containers": -1,
    }


def image_inspect(rows: list[Image], full: dict) -> dict:
    """``GET /images/{name}/json``; ``full`` is the agent's ``{"config": <OCI config>}``."""
    first = rows[0]
    oci = full.get("config") if isinstance(full.get("config"), dict) else {}
    config = image_config(first)
    rootfs = oci.get("rootfs") if isinstance(oci.get("rootfs"), dict) else {}
    return {
        "Id": first.image_id or first.digest,
        "RepoTags": repo_tags(rows),
        "RepoDigests": repo_digests(rows),
        "Parent": "",
        "Comment": "",
        "Created": rfc3339(first.created) if first.created else NEVER,
        "DockerVersion": "",
        "Author": oci.get("author", ""),
        "Config": {
            "Hostname": "",
            "Domainname": "",
            "User": config.get("User", ""),
            "AttachStdin": False,
            "AttachStdout": False,
            "AttachStderr": False,
            "ExposedPorts": config.get("ExposedPorts"),
            "Tty": False,
            "OpenStdin": False,
            "StdinOnce": False,
            "Env": config.get("Env") or [],
            "Cmd": config.get("Cmd"),
            "Image": "",
            "Volumes": config.get("Volumes"),
            "WorkingDir": config.get("WorkingDir", ""),
            "Entrypoint": config.get("Entrypoint"),
            "OnBuild": None,
            "Labels": config.get("Labels"),
            **({"StopSignal": config["StopSignal"]} if config.get("StopSignal") else {}),
        },
        "Architecture": oci.get("architecture", "amd64"),
        "Os": oci.get("os", "linux"),
        "Size": first.size,
        "VirtualSize": first.size,
        "GraphDriver": {"Name": "overlay", "Data": None},
        "RootFS": {"Type": "layers", "Layers": list(rootfs.get("diff_ids") or [])},
        "Metadata": {"LastTagTime": NEVER},
    }


def history(image: Image, entries: list) -> list[dict]:
    """``GET /images/{name}/history``: newest first, the top entry carrying the image id."""
    items = []
    for entry in reversed([item for item in entries if isinstance(item, dict)]):
        created = entry.get("created")
        stamp = 0
        if isinstance(created, str):
            try:
                stamp = int(datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp())
            except ValueError:
                stamp = 0
        items.append(
            {
                "Id": "<missing>",
                "Created": stamp,
                "CreatedBy": entry.get("created_by", ""),
                "Tags": None,
                "Size": 0,
                "Comment": entry.get("comment", ""),
            }
        )
    if items:
        items[0]["Id"] = image.image_id
        items[0]["Tags"] = [familiar(image.reference)]
    return items
