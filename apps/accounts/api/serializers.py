from rest_framework import serializers

from apps.accounts.models import ApiToken, User


class MeSerializer(serializers.ModelSerializer):
    teams = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "email", "is_staff", "is_superuser", "teams"]
        read_only_fields = fields

    def get_teams(self, user) -> list[dict]:
        rows = user.memberships.select_related("team").order_by("team__name")
        return [{"slug": m.team.slug, "name": m.team.name, "role": m.role} for m in rows]


class ApiTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "read_only", "created", "expires", "last_used", "revoked"]
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    read_only = serializers.BooleanField(required=False, default=False)
    expires_days = serializers.IntegerField(required=False, min_value=1, allow_null=True)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="shown only in this response")

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class TotpEnrolledSerializer(serializers.Serializer):
    uri = serializers.CharField(help_text="otpauth:// URI for an authenticator app; shown once")


class TotpCodeSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=12, help_text="the current 6-digit code")


class TotpStatusSerializer(serializers.Serializer):
    enabled = serializers.BooleanField()
