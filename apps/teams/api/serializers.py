from rest_framework import serializers

from apps.teams.choices import Role
from apps.teams.models import Membership, Team


class TeamSerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "role"]

    def get_role(self, team) -> str | None:
        roles = self.context.get("roles", {})
        return roles.get(team.pk)


class TeamCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    slug = serializers.SlugField(max_length=100, required=False, allow_blank=True)


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role"]
        read_only_fields = fields


class MemberSetSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)


class UsageSerializer(serializers.Serializer):
    containers = serializers.IntegerField()
    memory_bytes = serializers.IntegerField()
    cpus = serializers.FloatField()


class PolicySerializer(serializers.Serializer):
    """A team's policy; ``null`` quotas mean no limit (PATCH: site admins only)."""

    team = serializers.CharField(read_only=True)
    restrict_hosts = serializers.BooleanField(
        required=False, help_text="false: any host; true: only allowed_hosts"
    )
    allowed_hosts = serializers.ListField(child=serializers.CharField(), required=False)
    max_containers = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    max_memory_bytes = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    max_cpus = serializers.FloatField(required=False, allow_null=True, min_value=0)
    bind_mount_roots = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="absolute host paths bind mounts may use; empty: no bind mounts",
    )
    allow_privileged = serializers.BooleanField(required=False)
    usage = UsageSerializer(read_only=True)
