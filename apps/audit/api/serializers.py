from rest_framework import serializers

from apps.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_name", read_only=True)
    team = serializers.CharField(source="team_slug", read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "via",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "team",
            "ip",
            "details",
        ]
        read_only_fields = fields


class AuditQuerySerializer(serializers.Serializer):
    action = serializers.CharField(required=False, help_text='e.g. "container.create"')
    actor = serializers.CharField(required=False, help_text="username")
    team = serializers.CharField(required=False, help_text="team slug")
    object_type = serializers.CharField(required=False)
    object_id = serializers.CharField(required=False)
    ip = serializers.CharField(required=False)
    since = serializers.CharField(required=False, help_text="ISO 8601 time, inclusive")
    until = serializers.CharField(required=False, help_text="ISO 8601 time, exclusive")


class AuditExportQuerySerializer(AuditQuerySerializer):
    def get_fields(self):
        fields = super().get_fields()
        # "as" is a Python keyword, so the field is added here rather than declared.
        fields["as"] = serializers.ChoiceField(
            choices=["csv", "json"], required=False, default="json", help_text="file format"
        )
        return fields
