"""Team membership rules, shared by the API, the dashboard and the WebSocket consumer.

Every "which objects may this user see or touch" question is answered here so
the API and the HTML pages can never disagree.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils.text import slugify

from apps.audit import record
from apps.teams.choices import ACTING_ROLES, Role
from apps.teams.models import Membership, Team
from berth.errors import Conflict, Forbidden, InvalidInput, NotFound


def is_site_admin(user) -> bool:
    return bool(
        user and user.is_authenticated and user.is_active and (user.is_superuser or user.is_staff)
    )


def teams_of(user, roles=None) -> QuerySet[Team]:
    """Teams the user is a member of, optionally only those where they hold one of ``roles``."""
    if not (user and user.is_authenticated):
        return Team.objects.none()
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return Team.objects.filter(pk__in=memberships.values("team_id"))


def restrict_to_teams(queryset: QuerySet, user, *, field: str = "team", shared: bool = False):
    """Limit ``queryset`` to rows of the user's teams; site admins see everything.

    ``shared=True`` also admits rows whose team is NULL, meaning "visible to
    every team" (system images).
    """
    if is_site_admin(user):
        return queryset
    condition = Q(**{f"{field}__in": teams_of(user)})
    if shared:
        condition |= Q(**{f"{field}__isnull": True})
    return queryset.filter(condition)


def role_in(user, team: Team) -> str | None:
    return Membership.objects.filter(user=user, team=team).values_list("role", flat=True).first()


def can_act(user, team: Team | None) -> bool:
    """Operators and owners may change a team's objects; site admins may change any."""
    if is_site_admin(user):
        return True
    return team is not None and role_in(user, team) in ACTING_ROLES


def can_act_somewhere(user) -> bool:
    return is_site_admin(user) or teams_of(user, ACTING_ROLES).exists()


def resolve_team_for_create(user, slug: str | None = None) -> Team:
    """Pick the team a new object belongs to.

    An explicit slug must name a team the user may act in; without one the
    user's first team where they are operator/owner is used, so single-team
    users never need to say which.
    """
    if slug:
        team = Team.objects.filter(slug=slug).first()
        if team is None or not (is_site_admin(user) or role_in(user, team) is not None):
            raise InvalidInput(f"unknown team {slug!r}", field="team")
        if not can_act(user, team):
            raise InvalidInput(f"you are not an operator or owner of team {slug!r}", field="team")
        return team
    team = teams_of(user, ACTING_ROLES).order_by("name").first()
    if team is None:
        raise InvalidInput(
            "you are not an operator or owner of any team; pass 'team' or ask a team owner",
            field="team",
        )
    return team


@transaction.atomic
def ensure_team_owner(name: str, user) -> Team:
    """Create team ``name`` if needed and make ``user`` its owner (idempotent)."""
    team, _ = Team.objects.get_or_create(name=name, defaults={"slug": slugify(name)})
    Membership.objects.update_or_create(team=team, user=user, defaults={"role": Role.OWNER})
    return team


@transaction.atomic
def add_member(team: Team, user, role: str = Role.VIEWER) -> Membership:
    if role not in Role.values:
        raise InvalidInput(
            f"unknown role {role!r}; use one of {', '.join(Role.values)}", field="role"
        )
    membership, _ = Membership.objects.update_or_create(
        team=team, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def create_team(name: str, slug: str | None = None) -> Team:
    slug = slug or slugify(name)
    if not slug:
        raise InvalidInput("a team needs a name with at least one letter or digit", field="name")
    if Team.objects.filter(name=name).exists() or Team.objects.filter(slug=slug).exists():
        raise InvalidInput(f"a team named {name!r} already exists", field="name")
    team = Team.objects.create(name=name, slug=slug)
    record("team.create", team)
    return team


def can_manage(user, team: Team) -> bool:
    """Owners manage their team's members; site admins manage every team."""
    return is_site_admin(user) or role_in(user, team) == Role.OWNER


def require_manager(user, team: Team) -> None:
    if not can_manage(user, team):
        raise Forbidden(f"only owners of team {team.slug} (or site admins) may manage it")


@transaction.atomic
def set_member(actor, team: Team, username, role) -> Membership:
    """Add ``username`` to the team or change their role; a team keeps at least one owner."""
    from django.contrib.auth import get_user_model

    require_manager(actor, team)
    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None:
        raise InvalidInput(f"unknown user {username!r}", field="username")
    current = role_in(user, team)
    if current == Role.OWNER and role != Role.OWNER:
        _keep_an_owner(team, user)
    membership = add_member(team, user, role)
    record("team.member_set", team, details={"username": user.username, "role": role})
    return membership


@transaction.atomic
def remove_member(actor, team: Team, username: str) -> None:
    require_manager(actor, team)
    membership = Membership.objects.filter(team=team, user__username=username).first()
    if membership is None:
        raise NotFound(f"{username!r} is not a member of team {team.slug}")
    if membership.role == Role.OWNER:
        _keep_an_owner(team, membership.user)
    membership.delete()
    record("team.member_remove", team, details={"username": username})


def _keep_an_owner(team: Team, leaving) -> None:
    owners = Membership.objects.select_for_update().filter(team=team, role=Role.OWNER)
    if not owners.exclude(user=leaving).exists():
        raise Conflict(f"team {team.slug} must keep at least one owner")
