"""Create and update options of a container, and the agent spec fields they become.

Every parser takes a value as a client sent it (JSON) and returns it
normalised, or raises ``InvalidInput`` naming the field, so a bad option is
a 400 with a reason instead of a failure on the host. Nothing here changes
state: ``apps.containers.services`` parses, decides and stores.

Normalised options are stored on the row: ``labels``, ``restart_policy``
and ``auto_remove`` in their own columns (they are filtered on and acted
upon), everything else in the ``options`` JSON column holding only the keys
the client gave (``effective`` fills in the defaults for display).
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
import shlex
import signal as signals
from dataclasses import dataclass
from typing import Any

from apps.networks import options as network_options
from berth.errors import Forbidden, InvalidInput

# Options kept in Container.options, with what an absent key means.
DEFAULTS: dict[str, Any] = {
    "entrypoint": None,  # the image's Entrypoint
    "working_dir": None,  # the image's WorkingDir, else "/"
    "user": None,  # the image's User, else root
    "hostname": None,  # the container's short id
    "read_only": False,
    "tmpfs": {},
    "mounts": [],  # [{type, source, target, read_only, options}], see parse_mounts
    "extra_hosts": [],
    "sysctls": {},
    "memory": None,
    "memory_swap": None,  # the engine's default: twice "memory" when that is set
    "cpus": None,
    "cpu_shares": None,
    "cpuset_cpus": None,
    "pids_limit": None,
    "stop_signal": None,  # the image's StopSignal, else SIGTERM
    "stop_timeout": None,  # DEFAULT_STOP_TIMEOUT
    "log_max_size": None,
    "log_max_files": None,
    "no_new_privileges": False,
    "userns": False,  # a user namespace of its own (the engine's default id range)
    "seccomp": "default",
    "tty": False,
    "open_stdin": False,
    "start": True,
    "healthcheck": None,  # {test, interval, timeout, retries, start_period}; over the image's
    "network": "bridge",  # bridge, host, none, or a team network's name (apps/networks)
    "network_aliases": [],
    "ports": [],  # [{container_port, protocol, host_ip, host_port}]; host_port 0: ephemeral
    "networks": [],  # set at create: the team network's spec for the agent
}
# Options ``POST /api/containers/{id}/update/`` may change.
UPDATE_FIELDS = (
    "memory",
    "memory_swap",
    "cpus",
    "cpu_shares",
    "cpuset_cpus",
    "pids_limit",
    "restart_policy",
)
LIMIT_FIELDS = UPDATE_FIELDS[:-1]

CPU_PERIOD = 100_000  # µs; cpus=1.5 → cpu_quota=150000 per period
MIN_CPUS = 0.01  # a quota of 1 ms per period, as Docker's minimum
MAX_CPUS = 1024
MIN_MEMORY = 6 * 1024 * 1024  # Docker's minimum memory limit (6m)
MAX_BYTES = 2**62
MIN_LOG_SIZE = 1024
MAX_LOG_FILES = 100
CPU_SHARES_RANGE = (2, 262_144)
MAX_PIDS = 2**31 - 1
MAX_STOP_TIMEOUT = 3600
MAX_LABELS = 256
MAX_LABEL_KEY = 256
MAX_LABEL_VALUE = 4096
MAX_ENTRIES = 256  # tmpfs mounts, extra hosts, sysctls
MAX_PATH = 4096

SIZE_PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?", re.IGNORECASE)
SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}
HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOSTNAME_PATTERN = re.compile(rf"{HOST_LABEL}(?:\.{HOST_LABEL})*")
MAX_HOSTNAME = 63
USER_PART = r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?"
USER_PATTERN = re.compile(rf"{USER_PART}(?::{USER_PART})?")
MAX_USER = 256
CPUSET_PATTERN = re.compile(r"\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*")
# Sysctls that belong to the container's own namespaces (the only ones Docker allows).
NAMESPACED_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
NAMESPACED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")
SYSCTL_NAME = re.compile(r"[a-z0-9_]+(?:\.[A-Za-z0-9_-]+)+")
RESTART_NAMES = ("no", "on-failure", "always", "unless-stopped")
SECCOMP_PROFILES = ("default", "unconfined")
MOUNT_TYPES = ("bind", "volume", "tmpfs")
MOUNT_OPTIONS = {"bind": {"norecursive"}, "volume": {"nocopy"}}  # tmpfs: the kernel's own
VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,63}")


@dataclass(frozen=True)
class CreateOptions:
    """The parsed create options: columns of their own, and the ``options`` JSON."""

    options: dict[str, Any]
    labels: dict[str, str]
    restart_policy: str
    auto_remove: bool


def parse_create_options(data: dict, *, site_admin: bool) -> CreateOptions:
    """Every create option in ``data`` (absent or null keys keep their defaults)."""
    options: dict[str, Any] = {}
    for name, parser in PARSERS.items():
        value = data.get(name)
        if value is None:
            continue
        parsed = parser(value)
        if parsed is not None and parsed != DEFAULTS[name]:
            options[name] = parsed
    check_limits(options)
    if options.get("log_max_files", 1) > 1 and "log_max_size" not in options:
        raise InvalidInput(
            "'log_max_files' needs 'log_max_size': files are rotated when they reach it",
            field="log_max_files",
        )
    if options.get("seccomp") == "unconfined" and not site_admin:
        raise Forbidden(
            "seccomp unconfined is a privileged option: only site admins, or teams whose "
            "policy allows privileged options, may use it",
            field="seccomp",
        )
    check_userns(options)
    restart = data.get("restart_policy")
    restart = "no" if restart is None else parse_restart_policy(restart)
    auto_remove = data.get("auto_remove")
    auto_remove = False if auto_remove is None else parse_bool(auto_remove, "auto_remove")
    check_auto_remove(auto_remove, restart)
    return CreateOptions(
        options=options,
        labels=parse_labels(data.get("labels")),
        restart_policy=restart,
        auto_remove=auto_remove,
    )


def parse_update(data: Any) -> tuple[dict[str, Any], str | None]:
    """The limit changes and the new restart policy (None: unchanged) of an update request."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    unknown = sorted(set(data) - set(UPDATE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"cannot update {unknown[0]!r}; updatable: {', '.join(UPDATE_FIELDS)}", field=unknown[0]
        )
    changes = {
        name: PARSERS[name](data[name]) for name in LIMIT_FIELDS if data.get(name) is not None
    }
    restart = data.get("restart_policy")
    restart = parse_restart_policy(restart) if restart is not None else None
    if not changes and restart is None:
        raise InvalidInput(f"nothing to update; send one of: {', '.join(UPDATE_FIELDS)}")
    return changes, restart


def check_limits(options: dict) -> None:
    """Rules between limits (on the merged options of an update, too)."""
    swap = options.get("memory_swap")
    if swap is None:
        return
    memory = options.get("memory")
    if memory is None:
        raise InvalidInput("'memory_swap' needs 'memory' as well", field="memory_swap")
    if swap != -1 and swap < memory:
        raise InvalidInput(
            f"'memory_swap' ({swap} bytes) is memory plus swap: it must be at least "
            f"'memory' ({memory} bytes), or -1 for unlimited swap",
            field="memory_swap",
        )


def check_auto_remove(auto_remove: bool, restart_policy: str) -> None:
    if auto_remove and restart_policy != "no":
        raise InvalidInput(
            f"'auto_remove' cannot be combined with restart_policy {restart_policy!r}",
            field="auto_remove",
        )


def check_host_fit(options: dict, host) -> None:
    """Options that depend on the host: no more CPUs than it has."""
    cpus = options.get("cpus")
    if host.cpus and cpus is not None and cpus > host.cpus:
        raise InvalidInput(
            f"'cpus' is {cpus:g} but host {host.name} has {host.cpus} CPUs", field="cpus"
        )
    cpuset = options.get("cpuset_cpus")
    if host.cpus and cpuset is not None and _highest_cpu(cpuset) >= host.cpus:
        raise InvalidInput(
            f"'cpuset_cpus' {cpuset!r} names CPUs host {host.name} does not have "
            f"(it has 0-{host.cpus - 1})",
            field="cpuset_cpus",
        )


def effective(options: dict) -> dict[str, Any]:
    """The stored options with every default filled in (what the API shows)."""
    return {**DEFAULTS, **(options or {})}


# ---- the agent spec -----------------------------------------------------------------------


def agent_limits(options: dict) -> dict[str, Any]:
    """The ``limits`` of the agent spec (docs/agent-protocol.md) for the limit options given."""
    limits: dict[str, Any] = {}
    for name, key in (
        ("memory", "memory"),
        ("memory_swap", "memory_swap"),
        ("cpu_shares", "cpu_shares"),
        ("cpuset_cpus", "cpuset_cpus"),
        ("pids_limit", "pids"),
    ):
        if options.get(name) is not None:
            limits[key] = options[name]
    if options.get("cpus") is not None:
        limits["cpu_quota"] = cpu_quota(options["cpus"])
        limits["cpu_period"] = CPU_PERIOD
    return limits


def cpu_quota(cpus: float) -> int:
    return round(cpus * CPU_PERIOD)


def check_userns(options: dict) -> None:
    """A user namespace only lowers privilege, so anyone may ask for one; what the
    engine cannot combine with it is refused here, before the host sees it."""
    if not options.get("userns"):
        return
    if options.get("network") == "host":
        raise InvalidInput("a user namespace cannot be used with the host's network",
                           field="userns")
    if any(mount.get("type") == "volume" for mount in options.get("mounts") or []):
        raise InvalidInput("volumes are not supported with a user namespace yet",
                           field="userns")


def agent_spec_fields(options: dict, restart_policy: str) -> dict[str, Any]:
    """The optional fields of ``agent.container_run``'s spec; only what differs from defaults."""
    spec: dict[str, Any] = {}
    if options.get("entrypoint") is not None:
        spec["entrypoint"] = list(options["entrypoint"])
    if options.get("user"):
        spec["user"] = options["user"]
    limits = agent_limits(options)
    if limits:
        spec["limits"] = limits
    if restart_policy != "no":
        spec["restart"] = restart_policy
    log = {
        key: options[name]
        for name, key in (("log_max_size", "max_size"), ("log_max_files", "max_files"))
        if options.get(name) is not None
    }
    if log:
        spec["log"] = log
    if options.get("stop_signal"):
        spec["stop_signal"] = options["stop_signal"]
    for flag in ("read_only", "no_new_privileges", "tty", "open_stdin", "userns"):
        if options.get(flag):
            spec[flag] = True
    for mapping in ("tmpfs", "sysctls"):
        if options.get(mapping):
            spec[mapping] = dict(options[mapping])
    if options.get("extra_hosts"):
        spec["extra_hosts"] = list(options["extra_hosts"])
    if options.get("mounts"):
        spec["mounts"] = [agent_mount(mount) for mount in options["mounts"]]
    if options.get("seccomp", "default") != "default":
        spec["seccomp"] = options["seccomp"]
    if options.get("start") is False:
        spec["start"] = False
    if options.get("healthcheck"):
        spec["healthcheck"] = dict(options["healthcheck"])
    spec.update(network_spec_fields(options))
    return spec


def network_spec_fields(options: dict) -> dict[str, Any]:
    """Always a network mode: the engine's own default is a namespace without one."""
    networks = options.get("networks") or []
    spec: dict[str, Any] = {"network_mode": networks[0]["name"] if networks
                            else options.get("network") or "bridge"}
    if networks:
        spec["networks"] = [dict(network) for network in networks]
    if options.get("ports"):
        spec["ports"] = [dict(port) for port in options["ports"]]
    return spec


def agent_mount(mount: dict) -> dict:
    """A stored mount as the agent's spec has it: volumes by their name on the host."""
    keys = ("type", "source", "target", "read_only", "options", "within")
    entry = {key: mount[key] for key in keys if key in mount}
    if mount["type"] == "volume":
        entry["source"] = mount.get("name") or mount["source"]
        if mount.get("anonymous"):
            entry["anonymous"] = True
    return entry


# ---- single options -----------------------------------------------------------------------


def parse_bool(value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    raise InvalidInput(f"'{field}' must be true or false", field=field)


def parse_entrypoint(value: Any) -> list[str] | None:
    """A list of strings, or one string split like a shell would (as ``command``).
    An empty list clears the image's entrypoint and its Cmd (``--entrypoint ""``)."""
    if isinstance(value, str):
        try:
            value = shlex.split(value)
        except ValueError as exc:
            raise InvalidInput(f"cannot split entrypoint: {exc}", field="entrypoint") from None
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        raise InvalidInput("'entrypoint' must be a list of strings or a string", field="entrypoint")
    if any("\0" in arg for arg in value):
        raise InvalidInput("'entrypoint' contains a NUL byte", field="entrypoint")
    return value


def parse_working_dir(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput("'working_dir' must be an absolute path", field="working_dir")
    _check_text(value, "working_dir", MAX_PATH)
    return value


def parse_user(value: Any) -> str:
    """``name``, ``name:group``, ``uid`` or ``uid:gid`` (a number is taken as a uid)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if not isinstance(value, str) or len(value) > MAX_USER or not USER_PATTERN.fullmatch(value):
        raise InvalidInput(
            '\'user\' must be "name", "name:group", "uid" or "uid:gid"', field="user"
        )
    return value


def parse_hostname(value: Any) -> str:
    if (
        not isinstance(value, str)
        or len(value) > MAX_HOSTNAME
        or not HOSTNAME_PATTERN.fullmatch(value)
    ):
        raise InvalidInput(
            f"invalid hostname {value!r}: use letters, digits, '-' and '.' "
            f"(RFC 1123), at most {MAX_HOSTNAME} characters",
            field="hostname",
        )
    return value


def parse_labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("'labels' must be an object of string values", field="labels")
    if len(value) > MAX_LABELS:
        raise InvalidInput(f"at most {MAX_LABELS} labels", field="labels")
    for key, text in value.items():
        if not key or len(key) > MAX_LABEL_KEY or "=" in key or _has_control(key):
            raise InvalidInput(
                f"invalid label name {key!r}: 1-{MAX_LABEL_KEY} characters, "
                "no '=' or control characters",
                field="labels",
            )
        if not isinstance(text, str):
            raise InvalidInput(f"label {key!r} must have a string value", field="labels")
        _check_text(text, "labels", MAX_LABEL_VALUE)
    return dict(value)


def parse_tmpfs(value: Any) -> dict[str, str]:
    """``{"/run": "size=64m"}``, or a list of ``"/run"`` / ``"/run:size=64m"`` like ``--tmpfs``."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise InvalidInput("'tmpfs' list entries must be \"/path[:options]\"", field="tmpfs")
        value = dict(item.partition(":")[::2] for item in value)
    if not isinstance(value, dict):
        raise InvalidInput("'tmpfs' must be an object of path → mount options", field="tmpfs")
    _check_count(value, "tmpfs")
    mounts = {}
    for target, mount_options in value.items():
        parts = target.split("/")
        if not target.startswith("/") or target == "/" or ".." in parts:
            raise InvalidInput(
                f"invalid tmpfs target {target!r}: use an absolute path other than /",
                field="tmpfs",
            )
        _check_text(target, "tmpfs", MAX_PATH)
        if mount_options is None:
            mount_options = ""
        if not isinstance(mount_options, str):
            raise InvalidInput(f"tmpfs options of {target} must be a string", field="tmpfs")
        _check_text(mount_options, "tmpfs", MAX_PATH)
        mounts[target] = mount_options
    return mounts


def parse_mounts(value: Any) -> list[dict]:
    """Mounts as ``--mount`` objects or ``-v`` strings, normalised to
    ``{"type", "source", "target", "read_only", "options"}``.

    ``"name:/path[:ro]"`` is a named volume, ``"/host/path:/path[:ro]"`` a bind
    mount, ``"/path"`` a new anonymous volume (a volume's mode may add ",nocopy").
    Objects take ``type`` ("bind", "volume", "tmpfs"), ``source``, ``target`` (or
    ``destination``), ``read_only`` and ``options`` (bind: "norecursive"; volume:
    "nocopy"; tmpfs: "size=64m").
    """
    if not isinstance(value, list):
        raise InvalidInput(
            'mounts must be a list of "source:/target[:ro]" strings or mount objects',
            field="mounts",
        )
    _check_count(value, "mounts")
    mounts, targets = [], set()
    for item in value:
        mount = _short_mount(item) if isinstance(item, str) else _mount_object(item)
        if mount["target"] in targets:
            raise InvalidInput(f"two mounts on {mount['target']}", field="mounts")
        targets.add(mount["target"])
        mounts.append(mount)
    return mounts


def _short_mount(text: str) -> dict:
    parts = text.split(":")
    if len(parts) > 3 or not all(parts):
        raise InvalidInput(
            f'invalid mount {text!r}: use "name:/path", "/host/path:/path" or "/path", '
            'with ":ro" or ":rw" at the end',
            field="mounts",
        )
    modes = set(parts.pop().split(",")) if len(parts) == 3 else {"rw"}
    if not modes <= {"ro", "rw", "nocopy"} or {"ro", "rw"} <= modes:
        raise InvalidInput(
            f"invalid mount mode in {text!r}: ro or rw, optionally with nocopy", field="mounts"
        )
    source, target = (parts[0], parts[1]) if len(parts) == 2 else ("", parts[0])
    kind = "bind" if source.startswith("/") else "volume"
    options = "nocopy" if "nocopy" in modes else ""
    return _mount_object({"type": kind, "source": source, "target": target,
                          "read_only": "ro" in modes, "options": options})


def _mount_object(item: Any) -> dict:
    if not isinstance(item, dict) or item.get("type") not in MOUNT_TYPES:
        raise InvalidInput(
            f"invalid mount {item!r}: 'type' must be one of {', '.join(MOUNT_TYPES)}",
            field="mounts",
        )
    kind = item["type"]
    target = _mount_target(item.get("target", item.get("destination")))
    source = item.get("source") or ""
    options = item.get("options") or ""
    read_only = item.get("read_only", False)
    if not isinstance(source, str) or not isinstance(options, str):
        raise InvalidInput(f"mount on {target}: 'source' and 'options' are strings", field="mounts")
    _check_text(source, "mounts", MAX_PATH)
    _check_text(options, "mounts", MAX_PATH)
    if not isinstance(read_only, bool):
        raise InvalidInput(f"mount on {target}: 'read_only' must be true or false", field="mounts")
    if kind == "bind" and not source.startswith("/"):
        raise InvalidInput(
            f"bind mount on {target}: 'source' must be an absolute host path", field="mounts"
        )
    if kind == "volume" and source and not VOLUME_NAME.fullmatch(source):
        raise InvalidInput(
            f"invalid volume name {source!r}: 2-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit",
            field="mounts",
        )
    if kind == "tmpfs" and source:
        raise InvalidInput(f"tmpfs mount on {target} takes no 'source'", field="mounts")
    allowed = MOUNT_OPTIONS.get(kind)
    unknown = sorted(set(filter(None, options.split(","))) - allowed) if allowed else []
    if unknown:
        raise InvalidInput(f"unknown {kind} mount option {unknown[0]!r}", field="mounts")
    if kind == "bind":
        source = "/" + posixpath.normpath(source).lstrip("/")
    mount = {"type": kind, "source": source, "target": target, "read_only": read_only}
    if options:
        mount["options"] = options
    return mount


def _mount_target(value: Any) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise InvalidInput(f"mount target {value!r} must be an absolute path", field="mounts")
    _check_text(value, "mounts", MAX_PATH)
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if not parts or ".." in parts:
        raise InvalidInput(
            f"mount target {value!r} must be an absolute path other than /, without '..'",
            field="mounts",
        )
    target = "/" + "/".join(parts)
    if parts[0] in ("proc", "sys"):
        raise InvalidInput(f"cannot mount over {target}: it belongs to the kernel", field="mounts")
    return target


def parse_extra_hosts(value: Any) -> list[str]:
    """``["db:10.0.0.5", "v6:[::1]"]``, like ``docker run --add-host``."""
    if not isinstance(value, list):
        raise InvalidInput("'extra_hosts' must be a list of \"name:ip\"", field="extra_hosts")
    _check_count(value, "extra_hosts")
    entries = []
    for item in value:
        name, _, address = item.partition(":") if isinstance(item, str) else ("", "", "")
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            ip = None
        if ip is None or not HOSTNAME_PATTERN.fullmatch(name):
            raise InvalidInput(
                f'invalid extra host {item!r}: use "name:ip" with an IPv4 or IPv6 address',
                field="extra_hosts",
            )
        entries.append(f"{name}:{ip}")
    return entries


def parse_sysctls(value: Any) -> dict[str, str]:
    """Namespaced sysctls only (net.*, fs.mqueue.*, IPC kernel.*): others change the host."""
    if not isinstance(value, dict):
        raise InvalidInput("'sysctls' must be an object of name → value", field="sysctls")
    _check_count(value, "sysctls")
    sysctls = {}
    for name, setting in value.items():
        namespaced = name in NAMESPACED_SYSCTLS or name.startswith(NAMESPACED_SYSCTL_PREFIXES)
        if not SYSCTL_NAME.fullmatch(name) or not namespaced:
            raise InvalidInput(
                f"sysctl {name!r} is not allowed: only net.*, fs.mqueue.* and the IPC "
                "kernel.* sysctls belong to the container",
                field="sysctls",
            )
        if isinstance(setting, bool) or not isinstance(setting, str | int | float):
            raise InvalidInput(f"sysctl {name} must have a string or number value", field="sysctls")
        setting = str(setting)
        _check_text(setting, "sysctls", MAX_PATH)
        sysctls[name] = setting
    return sysctls


def parse_bytes(value: Any, field: str) -> int:
    """A byte count: a whole number, or a string like "512m", "1g", "1.5GiB" (binary units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and (match := SIZE_PATTERN.fullmatch(value.strip())):
        number = math.floor(float(match.group(1)) * SIZE_UNITS[match.group(2).lower()])
    else:
        raise InvalidInput(
            f'\'{field}\' must be a number of bytes or a size like "512m" or "1g"', field=field
        )
    if not 0 <= number <= MAX_BYTES:
        raise InvalidInput(f"'{field}' is out of range", field=field)
    return number


def parse_memory(value: Any) -> int:
    number = parse_bytes(value, "memory")
    if number < MIN_MEMORY:
        raise InvalidInput("'memory' must be at least 6m (6291456 bytes)", field="memory")
    return number


def parse_memory_swap(value: Any) -> int:
    if value in (-1, "-1"):
        return -1
    return parse_bytes(value, "memory_swap")


def parse_cpus(value: Any) -> float:
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not math.isfinite(number):
        raise InvalidInput("'cpus' must be a number of CPUs, e.g. 1.5", field="cpus")
    if not MIN_CPUS <= number <= MAX_CPUS:
        raise InvalidInput(f"'cpus' must be from {MIN_CPUS} to {MAX_CPUS}", field="cpus")
    return number


def parse_cpu_shares(value: Any) -> int:
    low, high = CPU_SHARES_RANGE
    return _int(value, "cpu_shares", low, high)


def parse_cpuset(value: Any) -> str:
    text = value.replace(" ", "") if isinstance(value, str) else ""
    if not CPUSET_PATTERN.fullmatch(text):
        raise InvalidInput(
            '\'cpuset_cpus\' must list CPUs like "0-2" or "0,3"', field="cpuset_cpus"
        )
    for part in text.split(","):
        low, _, high = part.partition("-")
        if high and int(high) < int(low):
            raise InvalidInput(f"CPU range {part!r} runs backwards", field="cpuset_cpus")
    return text


def parse_pids_limit(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        raise InvalidInput(
            "'pids_limit' must be a positive number (leave it out for no limit)",
            field="pids_limit",
        )
    return _int(value, "pids_limit", 1, MAX_PIDS)


def parse_restart_policy(value: Any) -> str:
    """One of "no", "always", "unless-stopped", "on-failure" or "on-failure:N" (N retries)."""
    name, _, count = value.partition(":") if isinstance(value, str) else ("", "", "")
    if name not in RESTART_NAMES or (count and (name != "on-failure" or not count.isdecimal())):
        raise InvalidInput(
            f'invalid restart policy {value!r}: use "no", "on-failure[:N]", '
            '"always" or "unless-stopped"',
            field="restart_policy",
        )
    retries = int(count or 0)
    return f"{name}:{retries}" if retries else name


def parse_stop_signal(value: Any) -> str:
    """A signal name ("TERM", "SIGTERM") or number, stored as its name ("SIGTERM")."""
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return signals.Signals(value).name
        if isinstance(value, str) and value.strip().isdecimal():
            return signals.Signals(int(value)).name
        if isinstance(value, str):
            name = value.strip().upper()
            return signals.Signals[name if name.startswith("SIG") else f"SIG{name}"].name
    except (KeyError, ValueError):
        pass
    raise InvalidInput(f"unknown stop signal {value!r}", field="stop_signal")


def parse_stop_timeout(value: Any) -> int:
    return _int(value, "stop_timeout", 0, MAX_STOP_TIMEOUT)


def parse_log_max_size(value: Any) -> int:
    number = parse_bytes(value, "log_max_size")
    if number < MIN_LOG_SIZE:
        raise InvalidInput("'log_max_size' must be at least 1k (1024 bytes)", field="log_max_size")
    return number


def parse_log_max_files(value: Any) -> int:
    return _int(value, "log_max_files", 1, MAX_LOG_FILES)


def parse_seccomp(value: Any) -> str:
    if value not in SECCOMP_PROFILES:
        raise InvalidInput('\'seccomp\' must be "default" or "unconfined"', field="seccomp")
    return value


def _int(value: Any, field: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidInput(f"'{field}' must be a whole number from {low} to {high}", field=field)
    return value


parse_int = _int  # for the other container services (exec, attach)


HEALTH_DURATIONS = ("interval", "timeout", "start_period")
DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_healthcheck(value: Any) -> dict:
    """Docker's HEALTHCHECK as options: ``test`` is ``["CMD", args…]``, ``["CMD-SHELL",
    "cmd"]``, ``["NONE"]`` (turns the image's off) or a shell string; durations are
    seconds or "500ms", "10s", "1m"; fields not given come from the image."""
    if not isinstance(value, dict) or not set(value) <= {"test", "retries", *HEALTH_DURATIONS}:
        raise InvalidInput("'healthcheck' takes test, interval, timeout, retries and "
                           "start_period", field="healthcheck")
    check: dict[str, Any] = {}
    if "test" in value:
        check["test"] = _health_test(value["test"])
    for name in HEALTH_DURATIONS:
        if value.get(name) is not None:
            check[name] = _duration(value[name], f"healthcheck.{name}")
    if value.get("retries") is not None:
        check["retries"] = _int(value["retries"], "healthcheck.retries", 1, 1000)
    return check


def _health_test(test: Any) -> list[str]:
    if isinstance(test, str) and test.strip():
        return ["CMD-SHELL", test]
    if isinstance(test, list) and test and all(isinstance(part, str) for part in test):
        kind, rest = test[0], test[1:]
        if (kind == "NONE" and not rest) or (kind == "CMD" and rest) or (
                kind == "CMD-SHELL" and len(rest) == 1):
            return test
    raise InvalidInput('healthcheck.test must be ["CMD", arg…], ["CMD-SHELL", "command"], '
                       '["NONE"] or a shell command', field="healthcheck")


def _duration(value: Any, field: str) -> float:
    seconds = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", value.strip())
        if match:
            seconds = float(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]
    if seconds is None or not 0.001 <= seconds <= 86400 * 7:
        raise InvalidInput(f"'{field}' must be a duration such as 30, \"500ms\" or \"1m\"",
                           field=field)
    return seconds


def _highest_cpu(text: str) -> int:
    return max(int(part.rpartition("-")[2]) for part in text.split(","))


def _check_text(value: str, field: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidInput(f"'{field}' is longer than {limit} characters", field=field)
    if "\0" in value or "\n" in value:
        raise InvalidInput(f"'{field}' contains a NUL byte or a newline", field=field)


def _check_count(value, field: str) -> None:
    if len(value) > MAX_ENTRIES:
        raise InvalidInput(f"at most {MAX_ENTRIES} entries in '{field}'", field=field)


def _has_control(text: str) -> bool:
    return any(ord(char) < 32 for char in text)


# Parsers of the ``options`` keys, by name; each returns the normalised value or None (unset).
def _parsers() -> dict:
    return {
        "entrypoint": parse_entrypoint,
        "working_dir": parse_working_dir,
        "user": parse_user,
        "hostname": parse_hostname,
        "read_only": lambda value: parse_bool(value, "read_only"),
        "tmpfs": parse_tmpfs,
        "mounts": parse_mounts,
        "extra_hosts": parse_extra_hosts,
        "sysctls": parse_sysctls,
        "memory": parse_memory,
        "memory_swap": parse_memory_swap,
        "cpus": parse_cpus,
        "cpu_shares": parse_cpu_shares,
        "cpuset_cpus": parse_cpuset,
        "pids_limit": parse_pids_limit,
        "stop_signal": parse_stop_signal,
        "stop_timeout": parse_stop_timeout,
        "log_max_size": parse_log_max_size,
        "log_max_files": parse_log_max_files,
        "no_new_privileges": lambda value: parse_bool(value, "no_new_privileges"),
        "userns": lambda value: parse_bool(value, "userns"),
        "seccomp": parse_seccomp,
        "tty": lambda value: parse_bool(value, "tty"),
        "open_stdin": lambda value: parse_bool(value, "open_stdin"),
        "start": lambda value: parse_bool(value, "start"),
        "healthcheck": parse_healthcheck,
        "network": network_options.parse_network,
        "network_aliases": network_options.parse_aliases,
        "ports": network_options.parse_ports,
    }


PARSERS = _parsers()
