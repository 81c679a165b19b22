"""API latency: 10,000 containers over 100 hosts in the database; p50 and p95 of the
container list API (first page, filtered, ordered) and of the dashboard's container
list page, on SQLite and on PostgreSQL (Debian's postgresql, started here in a
private directory on a Unix socket). Target: p95 ≤ 100 ms.

Requests go through Django's full stack in-process (middleware, authentication,
team restriction, serialisation, templates) with a token for the API and a session
for the page, as a team owner (so the team filter is in every query); no network.

Run (root, for PostgreSQL's own user):
    .venv/bin/python bench/api.py [--containers 10000] [--hosts 100] [--requests 50]
                                  [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
TARGET_P95_MS = 100.0
CASES = {
    "api first page": ("api", "/api/containers/"),
    "api filtered": ("api", "/api/containers/?state=running"),
    "api ordered": ("api", "/api/containers/?ordering=name"),
    "dashboard page": ("page", "/containers/"),
}


# ---- the parent: one child process per database -------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    worst = 0.0
    for database in args.db.split(","):
        with tempfile.TemporaryDirectory(prefix=f"berth-bench-{database}-") as tmp:
            results = run_on(database, Path(tmp), args)
        print(f"\n{database}: {args.containers} containers on {args.hosts} hosts")
        for name, (p50, p95) in results.items():
            mark = "ok" if p95 <= TARGET_P95_MS else "OVER"
            print(f"  {name:16} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {mark}")
            worst = max(worst, p95)
    print(f"\nworst p95 {worst:.1f} ms (target ≤ {TARGET_P95_MS:.0f} ms)")
    return 0


def run_on(database: str, tmp: Path, args) -> dict:
    env = dict(os.environ, BERTH_VAR_DIR=str(tmp / "var"), DJANGO_SETTINGS_MODULE="berth.settings")
    env.pop("DATABASE_URL", None)
    postgres = None
    if database == "postgres":
        postgres, env["DATABASE_URL"] = start_postgres(tmp)
    elif database != "sqlite":
        raise SystemExit(f"unknown database {database!r}: sqlite or postgres")
    try:
        argv = [
            sys.executable,
            __file__,
            "--child",
            database,
            "--containers",
            str(args.containers),
            "--hosts",
            str(args.hosts),
            "--requests",
            str(args.requests),
        ]
        result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"{database} run failed:\n{result.stdout}{result.stderr}")
        return json.loads(result.stdout.strip().splitlines()[-1])
    finally:
        if postgres is not None:
            stop_postgres(postgres)


def start_postgres(tmp: Path) -> tuple[subprocess.Popen, str]:
    if not (PG_BIN / "postgres").exists():
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    data, sockets = tmp / "pgdata", tmp / "pgsock"
    for directory in (data, sockets):
        directory.mkdir()
    shutil.chown(tmp, "postgres")
    for directory in (data, sockets):
        shutil.chown(directory, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *as_postgres,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen(
        [
            *as_postgres,
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-k",
            str(sockets),
            "-p",
            str(port),
            "-c",
            "listen_addresses=",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while (
        subprocess.run(
            [str(PG_BIN / "pg_isready"), "-h", str(sockets), "-p", str(port)], capture_output=True
        ).returncode
        != 0
    ):
        if time.monotonic() > deadline or server.poll() is not None:
            stop_postgres(server)
            raise SystemExit("PostgreSQL did not start")
        time.sleep(0.2)
    subprocess.run(
        [*as_postgres, str(PG_BIN / "createdb"), "-h", str(sockets), "-p", str(port), "berth"],
        check=True,
    )
    return server, f"postgresql://postgres@/berth?host={sockets}&port={port}"


def stop_postgres(server: subprocess.Popen) -> None:
    if server.poll() is None:
        os.killpg(server.pid, 15)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- the child: migrate, fill, measure ----------------------------------------------------


def child(args) -> int:
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    owner, key = fill(args.containers, args.hosts)
    results = measure(owner, key, args.requests)
    print(json.dumps(results))
    return 0


def fill(containers: int, hosts: int):
    from django.utils import timezone

    from apps.accounts.models import User
    from apps.accounts.services import create_token
    from apps.containers.models import Container
    from apps.hosts.models import Host
    from apps.images.models import Image
    from apps.teams.choices import Role
    from apps.teams.models import Membership, Team

    team = Team.objects.create(name="Bench", slug="bench")
    other = Team.objects.create(name="Other", slug="other")
    owner = User.objects.create_user("bench-owner", password="bench-password")
    Membership.objects.create(team=team, user=owner, role=Role.OWNER)
    now = timezone.now()
    Host.objects.bulk_create(
        Host(
            name=f"bench-{n:03d}",
            status="online",
            last_heartbeat=now,
            cpus=8,
            memory_bytes=32 * 2**30,
        )
        for n in range(hosts)
    )
    host_rows = list(Host.objects.order_by("name"))
    Image.objects.bulk_create(
        Image(host=host, reference="docker.io/library/busybox:latest", digest="sha256:" + "0" * 64)
        for host in host_rows
    )
    images = {image.host_id: image for image in Image.objects.all()}
    states = ["running", "running", "exited", "created", "paused"]
    rows = []
    for n in range(containers):
        host = host_rows[n % len(host_rows)]
        rows.append(
            Container(
                name=f"c{n:05d}",
                team=team if n % 10 else other,
                host=host,
                image=images[host.pk],
                image_reference="docker.io/library/busybox:latest",
                state=states[n % len(states)],
                labels={"n": str(n % 7)},
            )
        )
    Container.objects.bulk_create(rows, batch_size=1000)
    return owner, create_token(owner)[1]


def measure(owner, key: str, count: int) -> dict:
    from django.test import Client

    api = Client(HTTP_AUTHORIZATION=f"Token {key}", HTTP_HOST="localhost")
    page = Client(HTTP_HOST="localhost")
    page.force_login(owner)
    clients = {"api": api, "page": page}
    results = {}
    for name, (kind, path) in CASES.items():
        client = clients[kind]
        for _ in range(3):  # warm caches, connections, template loading
            check(client.get(path), path)
        times = []
        for _ in range(count):
            started = time.perf_counter()
            response = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            check(response, path)
        cuts = statistics.quantiles(times, n=100, method="inclusive")
        results[name] = (statistics.median(times), cuts[94])
    return results


def check(response, path: str) -> None:
    if response.status_code != 200:
        raise SystemExit(f"GET {path}: {response.status_code} {response.content[:300]!r}")


if __name__ == "__main__":
    raise SystemExit(main())
