"""``POST /containers/create`` and ``/update`` bodies mapped onto Berth's container options.

A Docker field Berth cannot honour is refused with a 400 naming it, never
dropped silently: a container must not run without the mount or limit its
owner asked for.
"""

from __future__ import annotations

from typing import Any

from apps.dockerapi.errors import DockerError

# Host config fields that are fine at their zero value and refused otherwise.
UNSUPPORTED_HOST_FIELDS = (
    "Privileged",
    "CapAdd",
    "Devices",
    "DeviceRequests",
    "VolumesFrom",
    "Links",
    "Dns",
    "DnsSearch",
    "DnsOptions",
    "Ulimits",
    "GroupAdd",
)
DEFAULT_NETWORK_MODES = ("", "default")
DEFAULT_NAMESPACE_MODES = ("", "private", "shareable")


def create_data(body: Any, name: str | None) -> dict:
    """The ``apps.containers.services.create_container`` request for a Docker create body."""
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object (container config)")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise DockerError(400, "HostConfig must be an object")
    _refuse_unsupported(host)
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise DockerError(400, "config.Image is required")
    data: dict[str, Any] = {
        "image": image,
        "command": body.get("Cmd") or None,
        "env": body.get("Env") or None,
        "labels": body.get("Labels") or None,
        "entrypoint": _entrypoint(body.get("Entrypoint")),
        "working_dir": body.get("WorkingDir") or None,
        "user": body.get("User") or None,
        "hostname": body.get("Hostname") or None,
        "tty": bool(body.get("Tty")),
        "open_stdin": bool(body.get("OpenStdin")),
        "stop_signal": body.get("StopSignal") or None,
        "stop_timeout": body.get("StopTimeout"),
        "start": False,  # docker create; /start starts it
        "auto_remove": bool(host.get("AutoRemove")),
        "read_only": bool(host.get("ReadonlyRootfs")),
        "tmpfs": host.get("Tmpfs") or None,
        "extra_hosts": _extra_hosts(host.get("ExtraHosts")),
        "sysctls": host.get("Sysctls") or None,
        "mounts": _with_anonymous(_mounts(host), body) or None,
        "ports": _ports(body, host) or None,
        **_network(host, body.get("NetworkingConfig")),
        **limits(host),
        **_log_options(host.get("LogConfig")),
        **_security(host.get("SecurityOpt")),
    }
    restart = restart_policy(host.get("RestartPolicy"))
    if restart is not None:
        data["restart_policy"] = restart
    if name:
        data["name"] = name.lstrip("/")
    return {key: value for key, value in data.items() if value is not None}


def _refuse_unsupported(host: dict) -> None:
    for field in UNSUPPORTED_HOST_FIELDS:
        if host.get(field):
            raise DockerError(400, f"Berth does not support HostConfig.{field} yet")
    for field in ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode"):
        mode = host.get(field) or ""
        if mode not in DEFAULT_NAMESPACE_MODES:
            raise DockerError(400, f"Berth does not support HostConfig.{field}={mode!r}")


def _mounts(host: dict) -> list:
    """``-v`` strings as they are (Berth reads the same syntax), ``--mount`` objects mapped."""
    mounts: list = []
    for bind in host.get("Binds") or []:
        if not isinstance(bind, str):
            raise DockerError(400, "HostConfig.Binds must be strings")
        source, _, rest = bind.partition(":")
        target, _, mode = rest.partition(":")
        modes = [part for part in mode.split(",") if part not in ("", "z", "Z", "rprivate")]
        mounts.append(":".join(filter(None, [source, target, ",".join(modes)])))
    for mount in host.get("Mounts") or []:
        if not isinstance(mount, dict):
            raise DockerError(400, "HostConfig.Mounts must be objects")
        kind = str(mount.get("Type") or "volume")
        options = []
        if (mount.get("VolumeOptions") or {}).get("NoCopy"):
            options.append("nocopy")
        size = (mount.get("TmpfsOptions") or {}).get("SizeBytes")
        if size:
            options.append(f"size={size}")
        mounts.append(
            {
                "type": kind,
                "source": mount.get("Source") or "",
                "target": mount.get("Target") or "",
                "read_only": bool(mount.get("ReadOnly")),
                "options": ",".join(options),
            }
        )
    return mounts


def _with_anonymous(mounts: list, body: dict) -> list:
    """Plus an anonymous volume per ``Volumes`` path no mount covers: the CLI sends
    ``-v /path`` there (the SDK also lists its binds' targets there)."""
    volumes = body.get("Volumes") or {}
    if not isinstance(volumes, dict):
        raise DockerError(400, "Volumes must be an object")
    covered = {_target(mount) for mount in mounts}
    return mounts + [
        {"type": "volume", "source": "", "target": str(target), "read_only": False,
         "options": ""}
        for target in volumes if str(target).rstrip("/") not in covered
    ]


def _target(mount) -> str:
    if isinstance(mount, dict):
        return str(mount["target"]).rstrip("/")
    parts = mount.split(":")
    return (parts[1] if len(parts) > 1 else parts[0]).rstrip("/")


def _ports(body: dict, host: dict) -> list[dict]:
    """``PortBindings`` (``-p``), plus every exposed port on an ephemeral one with ``-P``."""
    ports: list[dict] = []
    bindings = host.get("PortBindings") or {}
    if not isinstance(bindings, dict):
        raise DockerError(400, "HostConfig.PortBindings must be an object")
    for key, entries in bindings.items():
        number, _, protocol = str(key).partition("/")
        for entry in entries or [{}]:
            entry = entry or {}
            ports.append(
                {
                    "container_port": number,
                    "protocol": protocol or "tcp",
                    "host_ip": entry.get("HostIp") or "",
                    "host_port": entry.get("HostPort") or 0,
                }
            )
    if host.get("PublishAllPorts"):
        bound = {(str(port["container_port"]), port["protocol"]) for port in ports}
        for key in body.get("ExposedPorts") or {}:
            number, _, protocol = str(key).partition("/")
            if (number, protocol or "tcp") not in bound:
                ports.append(
                    {
                        "container_port": number,
                        "protocol": protocol or "tcp",
                        "host_ip": "",
                        "host_port": 0,
                    }
                )
    return ports


def _network(host: dict, networking: Any) -> dict:
    mode = host.get("NetworkMode") or ""
    if mode in DEFAULT_NETWORK_MODES:
        return {}
    data: dict[str, Any] = {"network": mode}
    endpoints = (networking or {}).get("EndpointsConfig") if isinstance(networking, dict) else None
    endpoint = (endpoints or {}).get(mode) or {}
    if isinstance(endpoint, dict) and endpoint.get("Aliases"):
        data["network_aliases"] = list(endpoint["Aliases"])
    return data


def _entrypoint(value: Any) -> Any:
    """None: the image's. ``--entrypoint ""`` arrives as ``[""]`` (the SDK's as ``[]``) and
    clears it, and with it the image's Cmd, as dockerd does."""
    if value is None or value == "":
        return None
    if value in ([""], []):
        return []
    return value


def _extra_hosts(value: Any) -> Any:
    if not value:
        return None
    if not isinstance(value, list):
        raise DockerError(400, "HostConfig.ExtraHosts must be a list")
    # Newer CLIs accept "name=ip" as well as "name:ip".
    return [
        item.replace("=", ":", 1) if isinstance(item, str) and "=" in item else item
        for item in value
    ]


def _log_options(value: Any) -> dict:
    if not isinstance(value, dict):
        return {}
    kind = value.get("Type") or ""
    if kind not in ("", "json-file", "local"):
        raise DockerError(400, f"Berth keeps its own logs; log driver {kind!r} is not supported")
    config = value.get("Config") or {}
    options = {}
    if config.get("max-size"):
        options["log_max_size"] = config["max-size"]
    if config.get("max-file"):
        options["log_max_files"] = config["max-file"]
    return options


def _security(value: Any) -> dict:
    options: dict[str, Any] = {}
    for item in value or []:
        text = str(item)
        if text in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"):
            options["no_new_privileges"] = True
        elif text.replace(":", "=", 1) == "seccomp=unconfined":
            options["seccomp"] = "unconfined"
        else:
            raise DockerError(400, f"Berth does not support security option {text!r}")
    return options


def limits(host: dict) -> dict:
    """Resource limits of a HostConfig or UpdateConfig; zero means "not set"."""
    data: dict[str, Any] = {}
    if host.get("Memory"):
        data["memory"] = host["Memory"]
    swap = host.get("MemorySwap")
    if swap:
        data["memory_swap"] = swap
    if host.get("NanoCpus"):
        data["cpus"] = host["NanoCpus"] / 1e9
    elif host.get("CpuQuota") and host.get("CpuPeriod"):
        data["cpus"] = host["CpuQuota"] / host["CpuPeriod"]
    if host.get("CpuShares"):
        data["cpu_shares"] = host["CpuShares"]
    if host.get("CpusetCpus"):
        data["cpuset_cpus"] = host["CpusetCpus"]
    pids = host.get("PidsLimit")
    if isinstance(pids, int) and pids > 0:
        data["pids_limit"] = pids
    return data


def restart_policy(value: Any) -> str | None:
    if not isinstance(value, dict) or not value.get("Name"):
        return None
    name = value["Name"]
    retries = value.get("MaximumRetryCount") or 0
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def update_data(body: Any) -> dict:
    if not isinstance(body, dict):
        raise DockerError(400, "the request body must be a JSON object (update config)")
    data = limits(body)
    restart = restart_policy(body.get("RestartPolicy"))
    if restart is not None:
        data["restart_policy"] = restart
    return data
