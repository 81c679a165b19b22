"""Shared pieces of the Docker API tests: the real docker CLI and a registry with an image."""

import json
import os
import socket
import subprocess
from pathlib import Path

from tests.engine.layouts import Layout, layer_tar
from tests.engine.registries import Registry, skopeo_push
from workers.engine.bootstrap import build_layer, find_busybox

DOCKER = "/usr/local/bin/docker" if os.path.exists("/usr/local/bin/docker") else "docker"
GREETING = "hello from the registry\n"


class Cli:
    """``docker -H <host> --config <dir>``: the token travels in config.json's HttpHeaders."""

    def __init__(self, host: str, config: Path | None):
        self.host = host
        self.config = config

    def __call__(self, *args: str, timeout: float = 120, input: str | None = None):
        argv = [DOCKER, "-H", self.host]
        if self.config is not None:
            argv += ["--config", str(self.config)]
        env = {key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")}
        return subprocess.run([*argv, *args], capture_output=True, text=True, timeout=timeout,
                              env=env, input=input)

    def ok(self, *args: str, timeout: float = 120) -> str:
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout


def cli_config(directory: Path, token: str | None) -> Path:
    headers = {"X-Berth-Token": token} if token else {}
    (directory / "config.json").write_text(json.dumps({"HttpHeaders": headers}))
    return directory


def start_registry_with_image(root: Path) -> tuple[Registry, str]:
    """A docker-registry on loopback holding busybox plus a greeting layer, as ``tools/box:v1``."""
    registry = Registry(root / "registry").start()
    layout = Layout(root / "layout")
    descriptor, _ = layout.image(
        [build_layer(find_busybox()), layer_tar({"greeting": GREETING})], cmd=["cat", "/greeting"]
    )
    layout.tag(descriptor, "v1")
    layout.write()
    skopeo_push(f"oci:{layout.root}:v1", registry, "tools/box:v1")
    return registry, f"{registry.address}/tools/box:v1"


def raw_http(address: str, request: bytes) -> bytes:
    """One request (which should say ``Connection: close``) and the answer up to EOF."""
    host, port = address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
        return b"".join(chunks)
