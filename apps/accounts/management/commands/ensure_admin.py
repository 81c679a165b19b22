"""Idempotent bootstrap of the first superuser and the ``default`` team, run by every deploy."""

import os

from django.core.management.base import BaseCommand

from apps.accounts.services import ensure_admin


class Command(BaseCommand):
    help = (
        "Create the admin superuser if missing (password from BERTH_ADMIN_PASSWORD or generated) "
        "and make it owner of the 'default' team."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        password = os.environ.get("BERTH_ADMIN_PASSWORD") or None
        result = ensure_admin(options["username"], password)
        if result.created:
            self.stdout.write(
                f"created admin user {result.username} with password {result.password}"
            )
        else:
            self.stdout.write(f"admin user {result.username} exists")
