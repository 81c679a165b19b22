from rest_framework import serializers

from apps.teams.models import Team


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "role"]

    def get_role(self, team) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(team.pk)
