"""Print a new API token key for a user; stdout carries only the key so scripts can capture it."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import create_token
from berth.errors import ServiceError


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print its key (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="a label to recognise the token by")
        parser.add_argument("--read-only", action="store_true", help="refuse unsafe methods")
        parser.add_argument("--expires-days", type=int, default=None, help="lifetime in days")

    def handle(self, *args, **options):
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user named {options['username']!r}")
        try:
            _, key = create_token(
                user,
                name=options["name"],
                read_only=options["read_only"],
                expires_days=options["expires_days"],
            )
        except ServiceError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)
