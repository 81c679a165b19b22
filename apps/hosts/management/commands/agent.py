"""`python manage.py agent`: run this host's agent (see workers/agent)."""

from django.core.management.base import BaseCommand

from workers.agent.config import AgentConfig
from workers.agent.main import run


class Command(BaseCommand):
    help = "Run this host's Berth agent: a Celery worker on host.<name> plus the supervisor."

    def add_arguments(self, parser):
        parser.add_argument("--name", help="host name (default BERTH_HOST_NAME or hostname)")
        parser.add_argument("--root", help="state directory (default BERTH_AGENT_ROOT)")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, **options):
        run(AgentConfig.from_env(options["name"], options["root"]), options["loglevel"])
