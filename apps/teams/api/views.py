from rest_framework import mixins, viewsets

from apps.teams.api.serializers import TeamSerializer
from apps.teams.models import Membership, Team
from apps.teams.services import teams_of


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's teams with their role in each, so clients know where they may act."""

    serializer_class = TeamSerializer
    lookup_field = "slug"
    queryset = Team.objects.all()

    def get_queryset(self):
        return teams_of(self.request.user).order_by("name")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user.is_authenticated:
            rows = Membership.objects.filter(user=self.request.user).values_list("team_id", "role")
            context["roles"] = dict(rows)
        return context
