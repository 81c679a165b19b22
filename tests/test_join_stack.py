"""A second agent joins a running Berth with a join token, connects as its own Redis user
(no shared secret), comes online, and runs a container; another host's queue stays closed
to it."""

import os
import secrets
import signal
import subprocess
import time

import pytest
import redis

from berth import ctl

pytestmark = [pytest.mark.stack, pytest.mark.usefixtures("needs_root")]


def read_env(path) -> dict:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def wait_online(api, name: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    host = {}
    while time.monotonic() < deadline:
        status, host = api.json("GET", f"/api/hosts/{name}/")
        if status == 200 and host.get("status") == "online":
            return host
        time.sleep(0.5)
    raise AssertionError(f"host {name} never came online: {host}")


def test_a_second_agent_joins_with_a_token(stack, tmp_path):
    layout, api = stack
    name = f"joined-{secrets.token_hex(3)}"
    status, token = api.json("POST", "/api/join-tokens/", {"name": "test", "host_name": name})
    assert status == 201, token
    env_file = tmp_path / "agent.env"
    joined = subprocess.run(
        [
            layout.python,
            "manage.py",
            "join",
            "--server",
            layout.url,
            "--token",
            token["key"],
            "--name",
            name,
            "--env-file",
            str(env_file),
        ],
        cwd=ctl.REPO,
        env=layout.env(),
        capture_output=True,
        text=True,
    )
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    credentials = read_env(env_file)
    assert credentials["BERTH_HOST_NAME"] == name
    assert f"berth-host-{name}:" in credentials["REDIS_URL"]

    root = tmp_path / "agent"
    # A network prefix of its own: at start an agent removes the links and rules of its
    # prefix that none of its containers hold, which would be the stack agent's.
    env = {**layout.env(), **credentials, "BERTH_AGENT_ROOT": str(root),
           "BERTH_NET_PREFIX": f"j{os.getpid() % 0xFFFFFF:06x}"}
    log = open(tmp_path / "agent.log", "wb")  # noqa: SIM115 - closed in finally
    agent = subprocess.Popen(
        [layout.python, "manage.py", "agent"],
        cwd=ctl.REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_online(api, name)
        status, created = api.json(
            "POST",
            "/api/containers/",
            {"image": "busybox", "host": name, "command": ["echo", "from the joined host"]},
        )
        assert status == 201, created
        row = api.wait_state(created["id"], {"exited"}, timeout=60)
        assert row["exit_code"] == 0 and row["host"] == name
        status, logs = api.call("GET", f"/api/containers/{created['id']}/logs/")
        assert status == 200 and logs == b"from the joined host\n"

        # With its credentials and key it cannot speak for another host: a signed report
        # about a container of the stack's host is dropped, while its own next one applies.
        status, theirs = api.json(
            "POST",
            "/api/containers/",
            {"image": "busybox", "host": layout.host_name, "command": ["sleep", "60"]},
        )
        assert status == 201, theirs
        api.wait_state(theirs["id"], {"running"})
        forge = [theirs["id"], {"seq": 10**6, "state": "exited", "exit_code": 99}]
        send_as(credentials, "containers.report_state", forge)
        own = [created["id"], {"seq": 10**6, "state": "exited", "exit_code": 42}]
        send_as(credentials, "containers.report_state", own)
        deadline = time.monotonic() + 30
        while api.json("GET", f"/api/containers/{created['id']}/")[1]["exit_code"] != 42:
            assert time.monotonic() < deadline, "the host's own signed report never applied"
            time.sleep(0.2)
        status, row = api.json("GET", f"/api/containers/{theirs['id']}/")
        assert row["state"] == "running" and row["exit_code"] is None
        api.call("DELETE", f"/api/containers/{theirs['id']}/?force=1")

        # Its credentials open its own queue only.
        as_host = redis.Redis.from_url(credentials["REDIS_URL"])
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_host.lrange(f"host.{layout.host_name}", 0, -1)
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_host.lrange("control", 0, -1)
        as_host.close()
    finally:
        # Out of the pool before it goes quiet: later tests' containers must not be
        # placed on a host whose agent is gone.
        api.call("POST", f"/api/hosts/{name}/cordon/")
        _stop(agent)
        log.close()
        subprocess.run(
            [layout.python, "-m", "workers.engine", "stop-all", "--root", str(root)],
            cwd=ctl.REPO,
            env=env,
            capture_output=True,
        )
        admin = redis.Redis.from_url(layout.redis_url)
        admin.execute_command("ACL", "DELUSER", f"berth-host-{name}")
        admin.close()
    with open("/proc/self/mounts") as mounts:
        assert [line for line in mounts if str(root) in line] == []


def send_as(credentials: dict, task_name: str, args: list) -> None:
    """Send a message to ``control`` as the joined host's agent would (its user, its key)."""
    from celery import Celery

    from berth import agent_auth

    app = Celery("forger", broker=credentials["REDIS_URL"])
    headers = agent_auth.headers(
        credentials["BERTH_HOST_NAME"], credentials["BERTH_HOST_KEY"], task_name, args
    )
    app.send_task(task_name, args=args, queue="control", headers=headers)
    app.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
