"""Starts and stops a whole Berth on this machine: `python -m berth.ctl up|down|status`.

`make up` / `make down` call this, and so do the stack tests, so what the tests
exercise is what a user runs. Standard library only: it must work before
anything but the virtualenv exists. Every process it starts gets a pid file
and a log under BERTH_VAR_DIR; `down` stops exactly those.
"""

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("web", "docker", "control", "agent")  # started in this order, stopped in reverse


@dataclass(frozen=True)
class Layout:
    var: Path
    bind: str
    redis_url: str
    host_name: str
    agent_root: Path
    python: str
    docker_tcp: str = "127.0.0.1:2375"  # the Docker Engine API (apps/dockerapi); "off": none
    docker_socket: str = "/run/berth/docker.sock"
    net_prefix: str = ""  # names of the agent's bridges, veths and chains; "": the default

    @property
    def run(self) -> Path:
        return self.var / "run"

    @property
    def logs(self) -> Path:
        return self.var / "log"

    @property
    def url(self) -> str:
        return f"http://{self.bind}"

    def pidfile(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(BERTH_VAR_DIR=str(self.var), REDIS_URL=self.redis_url,
                   BERTH_HOST_NAME=self.host_name, BERTH_AGENT_ROOT=str(self.agent_root),
                   PYTHONPATH=str(REPO), DJANGO_SETTINGS_MODULE="berth.settings")
        if self.net_prefix:
            env["BERTH_NET_PREFIX"] = self.net_prefix
        return env

    @classmethod
    def from_env(cls) -> "Layout":
        return cls(
            var=Path(os.environ.get("BERTH_VAR_DIR") or REPO / "var").resolve(),
            bind=os.environ.get("BERTH_BIND") or "127.0.0.1:8000",
            redis_url=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0",
            host_name=os.environ.get("BERTH_HOST_NAME") or socket.gethostname(),
            agent_root=Path(os.environ.get("BERTH_AGENT_ROOT") or "/var/lib/berth"),
            python=sys.executable,
            docker_tcp=os.environ.get("BERTH_DOCKER_TCP") or "127.0.0.1:2375",
            docker_socket=os.environ.get("BERTH_DOCKER_SOCKET") or "/run/berth/docker.sock",
        )


def commands(layout: Layout) -> dict[str, list[str]]:
    host, port = layout.bind.rsplit(":", 1)
    py = layout.python
    return {
        "web": [py, "-m", "uvicorn", "berth.asgi:application", "--host", host, "--port", port,
                "--no-access-log"],
        "control": [py, "-m", "celery", "-A", "berth", "worker", "-Q", "control", "-B",
                    "--schedule", str(layout.run / "celerybeat-schedule"),
                    "-n", f"control@{layout.host_name}", "--loglevel", "INFO",
                    "--without-mingle", "--without-gossip"],
        "agent": [py, "manage.py", "agent"],
        "docker": [py, "-m", "apps.dockerapi", "--tcp", layout.docker_tcp,
                   "--unix", layout.docker_socket, "--web-url", layout.url],
    }


# processes
def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if alive(pid) else None


def start(layout: Layout, name: str, argv: list[str]) -> int:
    pidfile = layout.pidfile(name)
    running = read_pid(pidfile)
    if running:
        return running
    log = open(layout.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(argv, cwd=REPO, env=layout.env(), stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    pidfile.write_text(f"{process.pid}\n")
    return process.pid


def stop(layout: Layout, name: str, timeout: float = 20) -> bool:
    pidfile = layout.pidfile(name)
    pid = read_pid(pidfile)
    if pid:
        _signal_group(pid, signal.SIGTERM)
        if not _wait_gone(pid, timeout):
            _signal_group(pid, signal.SIGKILL)
            _wait_gone(pid, 5)
    pidfile.unlink(missing_ok=True)
    return pid is not None


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


# redis
def redis_answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False


def ensure_redis(layout: Layout) -> None:
    if redis_answers(layout.redis_url):
        return
    parsed = urlparse(layout.redis_url)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"nothing answers on {layout.redis_url}, and it is not local to start")
    data = layout.var / "redis"
    data.mkdir(exist_ok=True)
    start(layout, "redis", ["redis-server", "--bind", "127.0.0.1", "--port",
                            str(parsed.port or 6379), "--save", "", "--appendonly", "no",
                            "--dir", str(data)])
    if not wait_until(lambda: redis_answers(layout.redis_url), 15):
        raise SystemExit(f"redis did not start; see {layout.logs / 'redis.log'}")


# health
def wait_until(predicate, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def web_healthy(layout: Layout) -> bool:
    try:
        with urllib.request.urlopen(f"{layout.url}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def docker_api_healthy(layout: Layout) -> bool:
    """The Docker API answers ``/_ping`` on its TCP port (or, with TCP off, has its socket)."""
    if layout.docker_tcp.lower() == "off":
        return layout.docker_socket.lower() == "off" or Path(layout.docker_socket).is_socket()
    host, port = layout.docker_tcp.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1) as sock:
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n")
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def manage(layout: Layout, *args: str) -> str:
    result = subprocess.run([layout.python, "manage.py", *args], cwd=REPO, env=layout.env(),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


def build_static() -> None:
    """Vendor the dashboard's npm libraries into static/vendor/ (a no-op when current)."""
    result = subprocess.run([str(REPO / "scripts" / "build-static.sh")], cwd=REPO,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"scripts/build-static.sh failed:\n{result.stdout}{result.stderr}")


# commands
def up(layout: Layout) -> str:
    for directory in (layout.var, layout.run, layout.logs):
        directory.mkdir(parents=True, exist_ok=True)
    ensure_redis(layout)
    manage(layout, "migrate", "--noinput")
    build_static()
    manage(layout, "collectstatic", "--noinput")
    admin_line = manage(layout, "ensure_admin")
    for name, argv in commands(layout).items():
        start(layout, name, argv)
    if not wait_until(lambda: web_healthy(layout), 60):
        raise SystemExit(f"the web server did not become healthy; see {layout.logs}/web.log")
    if not wait_until(lambda: docker_api_healthy(layout), 30):
        raise SystemExit(f"the Docker API did not start; see {layout.logs}/docker.log")
    manage(layout, "wait_host", layout.host_name, "--timeout", "90")
    return admin_line


def down(layout: Layout) -> None:
    # Stop containers (and the engine's zygote) while the agent and the control
    # worker still run, so their exits reach the control plane; even with the
    # agent gone, nothing this engine root started may outlive `down`.
    if (layout.agent_root / "containers").is_dir():
        subprocess.run(
            [layout.python, "-m", "workers.engine", "stop-all", "--root", str(layout.agent_root)],
            cwd=REPO,
            env=layout.env(),
        )
        if read_pid(layout.pidfile("agent")):
            time.sleep(1)
    for name in reversed(SERVICES):
        stop(layout, name)
    stop(layout, "redis")


def status(layout: Layout) -> dict[str, int | None]:
    return {name: read_pid(layout.pidfile(name)) for name in (*SERVICES, "redis")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="berth.ctl")
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    layout = Layout.from_env()
    if args.command == "up":
        admin_line = up(layout)
        print(f"Berth is up at {layout.url}/  (host {layout.host_name} online)")
        print(admin_line if "password" in admin_line else
              f"{admin_line}; its password was printed when it was created "
              "(set BERTH_ADMIN_PASSWORD and run `make up` again to reset it)")
        print("API token:  .venv/bin/python manage.py create_token admin")
        print(f"Logs and pid files: {layout.logs}, {layout.run}")
    elif args.command == "down":
        down(layout)
        print("Berth is down")
    else:
        for name, pid in status(layout).items():
            print(f"{name:8} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
