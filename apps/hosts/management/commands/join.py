"""`python manage.py join --server URL --token KEY [--name NAME] --env-file PATH`

Run on a new host: trades an admin's join token for this host's own broker
credentials and writes them to an env file (mode 0600) for the agent:
``REDIS_URL`` (this host's Redis user), ``BERTH_HOST_NAME`` and ``BERTH_HOST_KEY``
(the key its messages to the control plane are signed with). Start the agent
with that environment (e.g. systemd ``EnvironmentFile=``). Only an outbound
HTTPS/HTTP request to the control plane is made.
"""

import json
import os
import socket
import urllib.error
import urllib.request
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Join this host to a Berth control plane with a join token."

    def add_arguments(self, parser):
        parser.add_argument("--server", required=True, help="control plane URL, e.g. https://berth")
        parser.add_argument(
            "--token",
            default=os.environ.get("BERTH_JOIN_TOKEN"),
            help="join token (or BERTH_JOIN_TOKEN)",
        )
        parser.add_argument(
            "--name", default=os.environ.get("BERTH_HOST_NAME") or socket.gethostname()
        )
        parser.add_argument("--env-file", required=True, type=Path)

    def handle(self, *args, **options):
        if not options["token"]:
            raise CommandError("give --token or set BERTH_JOIN_TOKEN")
        answer = post_join(options["server"], options["token"], options["name"])
        write_env(
            options["env_file"],
            {
                "REDIS_URL": answer["broker_url"],
                "BERTH_HOST_NAME": answer["host"],
                "BERTH_HOST_KEY": answer["signing_key"],
            },
        )
        self.stdout.write(f"joined as host {answer['host']}; credentials in {options['env_file']}")


def post_join(server: str, token: str, name: str) -> dict:
    body = json.dumps({"token": token, "name": name}).encode()
    request = urllib.request.Request(
        server.rstrip("/") + "/api/join/",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            message = json.loads(error.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = error.reason
        raise CommandError(f"join refused ({error.code}): {message}") from None
    except urllib.error.URLError as error:
        raise CommandError(f"cannot reach {server}: {error.reason}") from None


def write_env(path: Path, values: dict) -> None:
    """Write atomically with mode 0600: the file holds a password."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for key, value in values.items():
            handle.write(f"{key}={value}\n")
    os.replace(partial, path)
