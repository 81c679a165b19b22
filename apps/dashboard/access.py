"""Who may see and do what on the pages: the same rules as the API (apps.teams.services).

Pages offer an action only where ``can_act`` allows it, and every view that
changes state checks again before calling a service, so a hand-made POST
from a viewer is refused exactly as the API refuses it.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from apps.containers.models import Container
from apps.images.models import Image, Registry
from apps.operations.models import Operation
from apps.teams.choices import ACTING_ROLES
from apps.teams.models import Team
from apps.teams.services import can_act, is_site_admin, restrict_to_teams, teams_of


def acting_team_ids(user) -> set[int]:
    """Teams whose objects the user may change (every team for site admins)."""
    teams = Team.objects.all() if is_site_admin(user) else teams_of(user, ACTING_ROLES)
    return set(teams.values_list("pk", flat=True))


def visible_teams(user):
    return Team.objects.all() if is_site_admin(user) else teams_of(user)


def require_act(user, team) -> None:
    if not can_act(user, team):
        raise PermissionDenied("Your role in this team only allows reading.")


def containers_of(user):
    return restrict_to_teams(Container.objects.select_related("team", "host"), user)


def images_of(user):
    return restrict_to_teams(Image.objects.select_related("team", "host"), user, shared=True)


def operations_of(user):
    return restrict_to_teams(Operation.objects.select_related("team", "host", "user"), user)


def registries_of(user):
    return restrict_to_teams(Registry.objects.select_related("team"), user)
