from django.urls import reverse
from rest_framework import serializers

from apps.operations.choices import OperationKind, OperationStatus
from apps.operations.models import Operation


class OperationSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.slug", read_only=True)
    host = serializers.CharField(source="host.name", read_only=True)
    user = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Operation
        fields = [
            "id",
            "kind",
            "status",
            "team",
            "user",
            "host",
            "target",
            "progress",
            "result",
            "error",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
        ]
        read_only_fields = fields

    def get_user(self, operation) -> str | None:
        return operation.user.username if operation.user_id else None

    def get_download_url(self, operation) -> str | None:
        """Where a succeeded save's archive can be fetched (relative URL), else null."""
        if operation.kind == OperationKind.SAVE and operation.status == OperationStatus.SUCCEEDED:
            return reverse("operation-download", kwargs={"pk": operation.pk})
        return None


class OperationQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=OperationStatus.choices, required=False)
    kind = serializers.ChoiceField(choices=OperationKind.choices, required=False)
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")
