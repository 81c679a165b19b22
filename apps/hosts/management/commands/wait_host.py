"""`python manage.py wait_host NAME`: wait until the control plane sees that host online.

`make up` uses it as the agent's health check: it proves the agent started,
reached Redis, and that the control-plane worker applied its registration.
"""

import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Wait until a host is registered and online."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--timeout", type=float, default=60)

    def handle(self, *args, **options):
        from apps.hosts.models import Host

        deadline = time.monotonic() + options["timeout"]
        while time.monotonic() < deadline:
            if Host.objects.filter(name=options["name"], status="online").exists():
                self.stdout.write(f"host {options['name']} is online")
                return
            time.sleep(0.25)
        raise CommandError(f"host {options['name']} did not come online in time")
