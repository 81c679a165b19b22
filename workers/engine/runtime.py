"""Container directories and their lifecycle on one host.

    <root>/containers/<id>/
        config.json     what the shim runs: layers, args, env, cwd, hostname
        state.json      written by the runtime and the shim (see state.py)
        upper/ work/    the overlay's writable layer, which dies with the container
        rootfs/         the overlay mount point (mounted only inside the container)
        hosts hostname resolv.conf   bind-mounted over the image's files
        container.log   stdout and stderr records (see logs.py)
"""

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from . import (
    attach,
    cgroups,
    execs,
    health,
    logs,
    mounts,
    native,
    rootfs,
    sealed,
    state,
    userns,
    volumes,
    zygote,
)
from .network import NetworkError, Networks
from .network import hooks as network_hooks
from .restart import PolicyError, RestartPolicy
from .store import ContentStore, StoreError

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
HOSTS_FILE = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\n"
              "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")


LIVE_STATES = state.LIVE
START_TIMEOUT = 60  # seconds for a shim to say how the start went
ZYGOTE_STOP_TIMEOUT = 2.0  # seconds a zygote has to end after SIGTERM before SIGKILL
STOPPING_SIGNALS = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)


class RuntimeError_(Exception):
    """A request the runtime refuses, with a message meant for the user."""


class NoSuchContainer(RuntimeError_):
    pass


class Runtime:
    def __init__(self, root: str | os.PathLike, store: ContentStore):
        self.engine_root = Path(root)
        self.root = Path(root) / "containers"
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.store = store
        self.volumes = volumes.VolumeStore(root, users=self.containers_using_volume)
        self.networks = Networks(root)

    def path(self, container_id: str) -> Path:
        if not ID_PATTERN.match(container_id):
            raise RuntimeError_(f"invalid container id {container_id!r}")
        return self.root / container_id

    def existing(self, container_id: str) -> Path:
        path = self.path(container_id)
        if not (path / "state.json").exists():
            raise NoSuchContainer(f"no such container: {container_id}")
        return path

    def ids(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "state.json").exists())

    def _configs(self) -> dict[str, dict]:
        configs = {}
        for container_id in self.ids():
            try:
                configs[container_id] = json.loads(
                    (self.root / container_id / "config.json").read_text())
            except (OSError, ValueError):
                continue
        return configs

    def containers_using(self, image_id: str) -> list[str]:
        return [container_id for container_id, config in self._configs().items()
                if config.get("image_id") == image_id]

    def containers_using_volume(self, name: str) -> list[str]:
        return [container_id for container_id, config in self._configs().items()
                if any(m.get("volume") == name for m in config.get("mounts") or [])]

    def image_ids_in_use(self) -> set[str]:
        return {config.get("image_id") for config in self._configs().values()}

    def pinned_layers(self) -> set[str]:
        """Layer directory names that containers stack, so GC keeps them."""
        return {Path(d).name for config in self._configs().values()
                for d in config.get("lowerdirs", [])}

    def state(self, container_id: str) -> dict:
        return state.read_state(self.existing(container_id))

    def config(self, container_id: str) -> dict:
        return json.loads((self.existing(container_id) / "config.json").read_text())

    # create
    def create(self, container_id: str, spec: dict) -> dict:
        path = self.path(container_id)
        if path.exists():
            raise RuntimeError_(f"container {container_id} already exists")
        try:
            image = self.store.resolve(spec["image"])
        except StoreError as exc:
            raise RuntimeError_(str(exc)) from exc
        config = _merge_config(image.config, spec)
        tmp = self.root / f".tmp-{container_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o700)
        for name in ("upper", "work", "rootfs"):
            (tmp / name).mkdir(mode=0o755)
        init_layer = rootfs.make_init_layer(self.root.parent / "init-layer")
        config.update(
            lowerdirs=[str(init_layer)] + [str(d) for d in self.store.layer_dirs(image)],
            upperdir=str(path / "upper"), workdir=str(path / "work"),
            rootfs=str(path / "rootfs"), image=image.reference, image_id=image.image_id,
        )
        _write_etc_files(tmp, config["hostname"], spec.get("extra_hosts") or [])
        # Under the volumes' lock until the container exists: a volume it uses cannot
        # be removed between being found (or made) here and the container naming it.
        with self.volumes.lock():
            try:
                config["mounts"] = self._mount_sources(config["mounts"], image.config)
            except (volumes.VolumeError, mounts.MountError) as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RuntimeError_(str(exc)) from None
            (tmp / "config.json").write_text(json.dumps(config))
            state.write_state(tmp, state=state.CREATED)
            os.rename(tmp, path)
        try:
            network_hooks.attach(self, container_id, spec)
        except NetworkError as exc:
            raise RuntimeError_(str(exc)) from None
        return state.read_state(path)

    def _mount_sources(self, entries: list[dict], image_config: dict) -> list[dict]:
        """Host sources of the mounts: volumes found or made (named ones as docker run
        does), one anonymous volume per image Volumes path no mount covers."""
        targets = {entry["target"] for entry in entries}
        for path in sorted(image_config.get("Volumes") or {}):
            target = mounts.validate_target(path)
            if target not in targets:
                entries.append({"type": "volume", "source": "", "target": target,
                                "read_only": False, "options": "", "anonymous": True})
                targets.add(target)
        for entry in entries:  # every refusal before any volume is made
            if entry["type"] == "bind" and not os.path.exists(entry["source"]):
                raise mounts.MountError(f"bind mount source {entry['source']} does not exist")
            if entry["type"] == "volume" and entry["source"]:
                self.volumes.path(entry["source"])
        resolved = []
        for entry in entries:
            if entry["type"] == "volume":
                made = self.volumes.create(entry["source"] or None,
                                           anonymous=entry.get("anonymous", False))
                entry = {**entry, "volume": made["name"], "source": made["mountpoint"],
                         "anonymous": made["anonymous"]}
            resolved.append(entry)
        return resolved

    # start
    def start(self, container_id: str) -> dict:
        path = self.existing(container_id)
        current = state.read_state(path)
        if current["state"] in (state.RUNNING, state.RESTARTING, state.PAUSED):
            raise RuntimeError_(f"container {container_id} is already {current['state']}")
        if problem := native.missing():
            raise RuntimeError_(problem)
        (path / state.STOP_MARKER).unlink(missing_ok=True)
        (path / "container.log").touch(mode=0o600)
        try:
            self.networks.revive(container_id)  # its namespace is gone after a reboot
        except NetworkError as exc:
            raise RuntimeError_(str(exc)) from None
        line = self._start_shim(path)
        if not line:
            raise RuntimeError_(f"shim for {container_id} died; see {path / 'shim.log'}")
        return json.loads(line)["state"]

    # exec
    def exec(self, container_id: str, spec: dict) -> "execs.ExecProcess":
        """Start a process inside the running container; the caller owns its stdio."""
        path = self.existing(container_id)
        try:
            parsed = execs.ExecSpec.parse(spec)
            connection = self._zygote_connection()
        except execs.ExecError as exc:
            raise RuntimeError_(str(exc)) from None
        except OSError as exc:
            raise RuntimeError_(f"cannot reach the engine's zygote: {exc}") from None
        try:
            connection.settimeout(START_TIMEOUT)
            process = execs.request(connection, path, parsed)
        except execs.ExecError as exc:
            connection.close()
            raise RuntimeError_(str(exc)) from None
        except OSError as exc:  # the zygote went away or did not answer in time
            connection.close()
            raise RuntimeError_(f"exec: {exc}") from None
        except BaseException:
            connection.close()
            raise
        connection.settimeout(None)
        return process

    def attach_input(self, container_id: str) -> "attach.ContainerInput":
        """A writable duplicate of the running container's stdin or terminal."""
        try:
            return attach.open_input(self.existing(container_id))
        except (attach.AttachError, OSError) as exc:
            raise RuntimeError_(str(exc)) from None

    def close_stdin(self, container_id: str) -> None:
        """End of file on the running container's open stdin (`docker run -i` input done)."""
        try:
            attach.close_stdin(self.existing(container_id))
        except (attach.AttachError, OSError) as exc:
            raise RuntimeError_(str(exc)) from None

    def _start_shim(self, path: Path) -> bytes:
        """Have the zygote fork the container's shim; its one line says how the start went."""
        try:
            with self._zygote_connection() as connection:
                connection.settimeout(START_TIMEOUT)
                connection.sendall(json.dumps({"dir": str(path)}).encode() + b"\n")
                return connection.makefile("rb").readline()
        except OSError as exc:
            raise RuntimeError_(f"cannot reach the engine's zygote: {exc}") from None

    def _zygote_connection(self) -> socket.socket:
        address = str(self.engine_root / zygote.SOCKET)
        try:
            return _connect(address)
        except OSError:
            pass
        with open(self.engine_root / "zygote.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time, until it answers
            try:
                return _connect(address)
            except OSError:
                # Nobody answers: a socket left by a zygote that died (host restart)
                # must go first, or it would pass for the new one's; and one that lives
                # but did not answer goes too, or it would linger, orphaned.
                self.stop_zygote()
                Path(address).unlink(missing_ok=True)
                self._spawn_zygote()
            if not wait_for(lambda: os.path.exists(address), 10, 0.005):
                raise OSError("the zygote did not start")
            return _connect(address)

    def _spawn_zygote(self) -> None:
        # From a sealed copy of the interpreter (sealed.py): what shims and execs are
        # at their execve into a container must never be the host's binary. argv[0]
        # stays sys.executable, from which Python finds its prefix and the venv.
        exe = sealed.interpreter_copy()
        log = open(self.engine_root / "zygote.log", "ab")  # noqa: SIM115 - the child's
        try:
            subprocess.Popen([sys.executable, "-m", "workers.engine.zygote",
                              str(self.engine_root), str(exe)],
                             executable=f"/proc/self/fd/{exe}", pass_fds=(exe,),
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=PROJECT_ROOT,
                             env=_shim_env(), close_fds=True, start_new_session=True)
        finally:
            log.close()
            os.close(exe)

    def shutdown(self) -> None:
        """After every container has stopped: end the zygote, drop empty parent cgroups,
        take down the networks of containers that are not running."""
        self.stop_zygote()
        cgroups.remove_empty_parents()
        self.networks.suspend({c for c in self.ids() if self.state(c)["state"] in LIVE_STATES})

    def stop_zygote(self) -> None:
        """End the zygote (running shims are not its children and go on)."""
        try:
            pid = int((self.engine_root / zygote.PIDFILE).read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"workers.engine.zygote" in cmdline:
            _end_process(pid)
        (self.engine_root / zygote.SOCKET).unlink(missing_ok=True)

    # signals
    def kill(self, container_id: str, signum: int = signal.SIGKILL) -> None:
        path = self.existing(container_id)
        current = state.read_state(path)
        if current["state"] not in (state.RUNNING, state.PAUSED, state.RESTARTING):
            raise RuntimeError_(f"container {container_id} is not running")
        if signum in STOPPING_SIGNALS:
            (path / state.STOP_MARKER).touch()
        if current["state"] == state.RESTARTING or not current["pid"]:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(current["pid"], signum)
        if current["state"] == state.PAUSED and signum in STOPPING_SIGNALS:
            self.unpause(container_id)  # a frozen process cannot act on the signal

    def stop(self, container_id: str, timeout: float = 10, signum: int | None = None) -> dict:
        path = self.existing(container_id)
        current = state.read_state(path)
        if current["state"] not in (state.RUNNING, state.PAUSED, state.RESTARTING):
            return current
        config = json.loads((path / "config.json").read_text())
        # Whatever the stop signal (nginx's is SIGQUIT), the policy must not restart it.
        (path / state.STOP_MARKER).touch()
        self.kill(container_id, signum or config.get("stop_signal") or signal.SIGTERM)
        if not self.wait(container_id, timeout):
            self._kill_until_down(container_id)
        return self.state(container_id)

    def _kill_until_down(self, container_id: str) -> None:
        """SIGKILL until the shim is gone; a restart that began meanwhile is killed too."""
        while not self.wait(container_id, 1):
            with contextlib.suppress(RuntimeError_):
                self.kill(container_id, signal.SIGKILL)

    def wait(self, container_id: str, timeout: float | None) -> bool:
        """Wait until the container's shim has written its exit; False on timeout."""
        current = self.state(container_id)
        if current["state"] not in LIVE_STATES:
            return True
        pidfd = open_shim(self.existing(container_id), current)
        if pidfd is None:
            return self.state(container_id)["state"] not in LIVE_STATES
        try:
            ready, _, _ = select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        return bool(ready) or self.state(container_id)["state"] not in LIVE_STATES

    # remove
    def remove(self, container_id: str, force: bool = False, volumes: bool = False) -> dict:
        """Remove the container; its volumes stay, except anonymous ones with `volumes`
        (docker rm -v)."""
        path = self.existing(container_id)
        current = state.read_state(path)
        if current["state"] in LIVE_STATES:
            if not force:
                raise RuntimeError_(
                    f"container {container_id} is running: stop it first or force removal")
            self.kill(container_id, signal.SIGKILL)
            self._kill_until_down(container_id)
        try:
            self.networks.release(container_id)
        except NetworkError as exc:
            raise RuntimeError_(str(exc)) from None
        final = state.write_state(path, state=state.REMOVED)
        cgroups.for_container(container_id).remove()
        anonymous = [m["volume"] for m in self.config(container_id).get("mounts") or []
                     if m.get("anonymous")]
        shutil.rmtree(path)
        if volumes:
            self.remove_volumes(anonymous)
        return final

    def remove_volumes(self, names: list[str]) -> list[str]:
        """Remove these volumes where no other container uses them; the names removed."""
        removed = []
        for name in names:
            try:
                self.volumes.remove(name)
            except volumes.VolumeError:
                continue
            removed.append(name)
        return removed

    # limits, freezing, stats
    def update(self, container_id: str, limits: dict | None = None,
               restart: str | None = None) -> dict:
        """Change limits (live when running) and the restart policy; returns the new config."""
        path = self.existing(container_id)
        config = json.loads((path / "config.json").read_text())
        if limits:
            merged = {**(config.get("limits") or {}), **limits}
            parsed = cgroups.Limits.from_dict(merged)
            if state.read_state(path)["state"] in LIVE_STATES:
                try:
                    cgroups.for_container(container_id).update(parsed)
                except cgroups.CgroupError as exc:
                    raise RuntimeError_(str(exc)) from None
            config["limits"] = merged
        if restart is not None:
            config["restart"] = str(_policy(restart))
        _write_json(path / "config.json", config)
        return config

    def pause(self, container_id: str) -> dict:
        return self._freeze(container_id, True)

    def unpause(self, container_id: str) -> dict:
        return self._freeze(container_id, False)

    def _freeze(self, container_id: str, frozen: bool) -> dict:
        path = self.existing(container_id)
        current = state.read_state(path)
        wanted_from = state.RUNNING if frozen else state.PAUSED
        if current["state"] != wanted_from:
            verb = "pause" if frozen else "unpause"
            raise RuntimeError_(f"cannot {verb} container {container_id}: it is "
                                f"{current['state']}")
        try:
            cgroups.for_container(container_id).freeze(frozen)
        except (cgroups.CgroupError, OSError) as exc:
            raise RuntimeError_(str(exc)) from None
        return state.write_state(path, state=state.PAUSED if frozen else state.RUNNING)

    def stats(self, container_id: str) -> dict:
        current = self.state(container_id)
        if current["state"] not in (state.RUNNING, state.PAUSED) or not current["pid"]:
            raise RuntimeError_(f"container {container_id} is not running")
        figures = cgroups.for_container(container_id).stats()
        figures["networks"] = cgroups.network_stats(current["pid"])
        figures["read_at"] = state.now_iso()
        return figures

    def logs(self, container_id: str, tail: int | None = None, timestamps: bool = False) -> str:
        return logs.read_text(self.existing(container_id) / "container.log", tail, timestamps)


def _end_process(pid: int) -> None:
    """SIGTERM, then SIGKILL if it still runs after ZYGOTE_STOP_TIMEOUT: a zygote that
    missed its SIGTERM (seen under load, cause unknown) must not live on, orphaned."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        ended, _, _ = select.select([pidfd], [], [], ZYGOTE_STOP_TIMEOUT)
        if not ended:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    finally:
        os.close(pidfd)


def _connect(address: str) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(address)
    except OSError:
        connection.close()
        raise
    return connection


def open_shim(container_dir: Path, current: dict) -> int | None:
    """A pidfd for the container's live shim, or None when it is gone.

    The pidfd pins the process; checking its start time after opening it
    rules out a recycled pid that now belongs to something else.
    """
    pid = current.get("shim_pid")
    if not pid or current["state"] not in LIVE_STATES:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if state.process_start_time(pid) != current.get("shim_start"):
        os.close(pidfd)
        return None
    return pidfd


def _merge_config(image_config: dict, spec: dict) -> dict:
    # An entrypoint of the container's own, even [] (`--entrypoint ""`), replaces the
    # image's and drops the image's Cmd, as in Docker.
    own = spec.get("entrypoint") is not None
    entrypoint = spec["entrypoint"] if own else image_config.get("Entrypoint") or []
    command = spec.get("args") or ([] if own else image_config.get("Cmd")) or []
    args = list(entrypoint) + list(command)
    if not args:
        raise RuntimeError_("no command specified and the image has none")
    env = _merge_env(image_config.get("Env") or [], spec.get("env") or [])
    return {
        "args": args,
        "env": env,
        "cwd": spec.get("cwd") or image_config.get("WorkingDir") or "/",
        "hostname": spec.get("hostname") or "berth",
        "name": spec.get("name", ""),
        "limits": spec.get("limits") or {},
        "restart": str(_policy(spec.get("restart"))),
        "log": spec.get("log") or {},
        "stop_signal": _signal_number(spec.get("stop_signal") or image_config.get("StopSignal")),
        "user": spec.get("user") or image_config.get("User") or "",
        "read_only": bool(spec.get("read_only")),
        "no_new_privileges": bool(spec.get("no_new_privileges")),
        "tty": bool(spec.get("tty")),
        "open_stdin": bool(spec.get("open_stdin")),
        "seccomp": "unconfined" if spec.get("seccomp") == "unconfined" else "default",
        "tmpfs": _tmpfs(spec.get("tmpfs") or {}),
        "mounts": _mounts(spec.get("mounts")),
        "sysctls": _sysctls(spec.get("sysctls") or {}),
        "healthcheck": _healthcheck(image_config.get("Healthcheck"), spec.get("healthcheck")),
        "userns": _userns(spec),
    }


def _userns(spec: dict) -> dict | None:
    try:
        remap = userns.parse(spec.get("userns"))
    except userns.UsernsError as exc:
        raise RuntimeError_(str(exc)) from None
    if remap and spec.get("network_mode") == "host":
        # The host's network namespace belongs to the host's user namespace (as Docker).
        raise RuntimeError_("a user namespace cannot be used with the host's network")
    return remap


NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                      "kernel.shm_rmid_forced")
NAMESPACED_SYSCTL_PREFIXES = ("fs.mqueue.", "net.")


def _sysctls(sysctls: dict) -> dict[str, str]:
    """Only sysctls that belong to the container's own namespaces, as Docker allows."""
    for name in sysctls:
        allowed = name in NAMESPACED_SYSCTLS or name.startswith(NAMESPACED_SYSCTL_PREFIXES)
        if not allowed or ".." in name or "/" in name:
            raise RuntimeError_(f"sysctl {name!r} is not namespaced: it would change the host")
    return {name: str(value) for name, value in sysctls.items()}


def _mounts(entries) -> list[dict]:
    try:
        return mounts.parse_mounts(entries)
    except mounts.MountError as exc:
        raise RuntimeError_(str(exc)) from None


def _healthcheck(image: dict | None, given: dict | None) -> dict | None:
    try:
        check = health.HealthCheck.merged(image, given)
    except (health.HealthError, TypeError, ValueError) as exc:
        raise RuntimeError_(f"invalid health check: {exc}") from None
    return asdict(check) if check else None


def _tmpfs(mounts: dict) -> dict[str, str]:
    for target, options in mounts.items():
        if not target.startswith("/") or ".." in target.split("/") or target == "/":
            raise RuntimeError_(f"invalid tmpfs target {target!r}: use an absolute path")
        if any(c in str(options) for c in "\0\n"):
            raise RuntimeError_(f"invalid tmpfs options for {target}")
    return {target: str(options or "") for target, options in mounts.items()}


def _policy(text) -> RestartPolicy:
    try:
        return RestartPolicy.parse(text)
    except PolicyError as exc:
        raise RuntimeError_(str(exc)) from None


def _signal_number(value) -> int | None:
    """SIGTERM, TERM, 15 → 15, as an image's StopSignal may be written."""
    if value in (None, ""):
        return None
    text = str(value).upper()
    if text.isdecimal():
        return int(text)
    try:
        return int(signal.Signals[text if text.startswith("SIG") else f"SIG{text}"])
    except KeyError:
        raise RuntimeError_(f"unknown stop signal {value!r}") from None


def _write_json(path: Path, document: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def _merge_env(base: list[str], overrides: list[str]) -> list[str]:
    merged = dict(pair.split("=", 1) if "=" in pair else (pair, "") for pair in base)
    for pair in overrides:
        key, _, value = pair.partition("=")
        merged[key] = value
    return [f"{key}={value}" for key, value in merged.items()]


def _write_etc_files(path: Path, hostname: str, extra_hosts: list[str]) -> None:
    (path / "hostname").write_text(hostname + "\n")
    extra = "".join(f"{address}\t{name}\n" for name, address in map(_host_entry, extra_hosts))
    (path / "hosts").write_text(HOSTS_FILE + extra)
    (path / "resolv.conf").write_text(_resolv_conf())


def _host_entry(text: str) -> tuple[str, str]:
    """`name:address`, as `docker run --add-host` takes it (IPv6 addresses have colons)."""
    name, _, address = text.partition(":")
    try:
        ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise RuntimeError_(f"invalid extra host {text!r}: use name:address") from None
    if not name or any(c.isspace() for c in name):
        raise RuntimeError_(f"invalid extra host {text!r}: use name:address")
    return name, address.strip("[]")


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback servers, which mean nothing in the
    container's own network namespace."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        return ""
    kept = [line for line in lines
            if not (line.startswith("nameserver") and _is_loopback(line.split()[-1]))]
    return "\n".join(kept) + "\n"


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"


def _shim_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "PYTHONPATH": str(PROJECT_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    if "BERTH_CGROUP_PARENT" in os.environ:
        env["BERTH_CGROUP_PARENT"] = os.environ["BERTH_CGROUP_PARENT"]
    return env


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
