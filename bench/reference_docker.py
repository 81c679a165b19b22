"""A private dockerd for benchmarks: Debian's docker.io, started and stopped by the script."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class PrivateDockerd:
    def __init__(self, insecure_registries: list[str] = ()):
        self.root = Path(tempfile.mkdtemp(prefix="berth-bench-dockerd-"))
        self.socket = self.root / "docker.sock"
        self.insecure = list(insecure_registries)
        self.process = None

    # Without Docker's own networking, unless a benchmark measures it (bench/net.py).
    networking_args = ("--bridge", "none", "--iptables=false", "--ip6tables=false")

    def __enter__(self) -> "PrivateDockerd":
        if not shutil.which("dockerd"):
            raise SystemExit("dockerd is missing: apt-get install docker.io")
        args = ["dockerd", "--data-root", str(self.root / "data"), "--exec-root",
                str(self.root / "exec"), "-H", f"unix://{self.socket}", "--pidfile",
                str(self.root / "docker.pid"), *self.networking_args]
        args += [f"--insecure-registry={r}" for r in self.insecure]
        log = open(self.root / "dockerd.log", "wb")  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.docker("version", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise SystemExit(f"dockerd did not start: {(self.root / 'dockerd.log').read_text()}")

    def docker(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        env = {**os.environ, "DOCKER_HOST": f"unix://{self.socket}"}
        return subprocess.run(["docker", *args], env=env, check=check, capture_output=True,
                              **kwargs)

    def __exit__(self, *exc) -> None:
        self.docker("rm", "-f", *self._all_containers(), check=False)
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _all_containers(self) -> list[str]:
        result = self.docker("ps", "-aq", check=False, text=True)
        return result.stdout.split() if result.returncode == 0 else []
