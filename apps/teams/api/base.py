"""The single base class that restricts API objects to the caller's teams.

Restricting the queryset (rather than checking after lookup) means another
team's object is simply not found: a 404, which does not even confirm it exists.
"""

from __future__ import annotations

from rest_framework import permissions, viewsets

from apps.teams.services import can_act, can_act_somewhere, restrict_to_teams


class TeamRolePermission(permissions.BasePermission):
    """Viewers read; operators and owners (and site admins) create and act."""

    message = "Your role in this team only allows reading (operator or owner required)."

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_act_somewhere(request.user)

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in permissions.SAFE_METHODS:
            return True
        return can_act(request.user, getattr(obj, "team", None))


class TeamScopedViewSet(viewsets.GenericViewSet):
    """Subclasses set ``queryset``; rows of other teams never leave the database.

    ``shared_team_null = True`` also shows rows without a team (visible to all).
    """

    permission_classes = [permissions.IsAuthenticated, TeamRolePermission]
    team_field = "team"
    shared_team_null = False

    def get_queryset(self):
        return restrict_to_teams(
            super().get_queryset(),
            self.request.user,
            field=self.team_field,
            shared=self.shared_team_null,
        )
