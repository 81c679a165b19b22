"""Teams: the caller's teams and roles; owners manage members; site admins set policy."""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.teams import policy as team_policy
from apps.teams import services
from apps.teams.api.serializers import (
    MemberSerializer,
    MemberSetSerializer,
    PolicySerializer,
    TeamCreateSerializer,
    TeamSerializer,
)
from apps.teams.models import Membership, Team
from apps.teams.services import is_site_admin, teams_of
from berth.errors import Forbidden


class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's teams with their role in each (site admins see every team)."""

    serializer_class = TeamSerializer
    lookup_field = "slug"
    queryset = Team.objects.all()

    def get_queryset(self):
        if is_site_admin(self.request.user):
            return Team.objects.order_by("name")
        return teams_of(self.request.user).order_by("name")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.user.is_authenticated:
            rows = Membership.objects.filter(user=self.request.user).values_list("team_id", "role")
            context["roles"] = dict(rows)
        return context

    @extend_schema(request=TeamCreateSerializer, responses={201: TeamSerializer})
    def create(self, request):
        """Create a team (site admins)."""
        if not is_site_admin(request.user):
            raise Forbidden("only site admins may create teams")
        payload = TeamCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        team = services.create_team(
            payload.validated_data["name"], payload.validated_data.get("slug") or None
        )
        return Response(self.get_serializer(team).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def members(self, request, slug=None):
        team = self.get_object()
        rows = team.memberships.select_related("user").order_by("user__username")
        return Response(MemberSerializer(rows, many=True).data)

    @extend_schema(request=MemberSetSerializer, responses=MemberSerializer)
    @members.mapping.post
    def set_member(self, request, slug=None):
        """Add a member or change their role (owners and site admins)."""
        team = self.get_object()
        payload = MemberSetSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        membership = services.set_member(request.user, team, data["username"], data["role"])
        return Response(MemberSerializer(membership).data)

    @extend_schema(request=None, responses={204: None})
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"members/(?P<username>[^/]+)",
        url_name="member",
    )
    def remove_member(self, request, slug=None, username=None):
        team = self.get_object()
        services.remove_member(request.user, team, username)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=PolicySerializer)
    @action(detail=True, methods=["get"], url_path="policy")
    def policy(self, request, slug=None):
        """The team's policy and what its containers hold now."""
        return Response(team_policy.describe(team_policy.policy_of(self.get_object())))

    @extend_schema(request=PolicySerializer, responses=PolicySerializer)
    @policy.mapping.patch
    def update_policy(self, request, slug=None):
        """Change the team's policy (site admins)."""
        team = self.get_object()
        payload = PolicySerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        changed = team_policy.update_policy(team, request.user, dict(request.data))
        return Response(team_policy.describe(changed))
