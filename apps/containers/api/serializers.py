"""Container JSON, and the request bodies of its actions.

Request serializers only check shapes and document the API; the service
functions make every decision, so other callers get the same rules.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.containers.choices import DEFAULT_STOP_TIMEOUT
from apps.containers.models import Container


class ContainerSerializer(serializers.ModelSerializer):
    host = serializers.CharField(source="host.name", read_only=True)
    team = serializers.CharField(source="team.slug", read_only=True)
    image = serializers.CharField(source="image_reference", read_only=True)

    class Meta:
        model = Container
        fields = [
            "id",
            "name",
            "team",
            "state",
            "host",
            "image",
            "command",
            "env",
            "pid",
            "exit_code",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


@extend_schema_field(
    {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]}
)
class CommandField(serializers.JSONField):
    """A list of arguments, or one string split like a shell would."""


class ContainerCreateSerializer(serializers.Serializer):
    image = serializers.CharField(help_text='image reference, e.g. "busybox" or "ghcr.io/o/app:1"')
    command = CommandField(required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_blank=True, max_length=128)
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    env = serializers.ListField(child=serializers.CharField(), required=False, help_text='"K=V"')
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class StopSerializer(serializers.Serializer):
    timeout = serializers.IntegerField(
        required=False, min_value=0, max_value=3600, default=DEFAULT_STOP_TIMEOUT
    )


@extend_schema_field(OpenApiTypes.STR)
class SignalField(serializers.JSONField):
    """A signal number (default 9) or name such as "TERM"."""


class KillSerializer(serializers.Serializer):
    signal = SignalField(required=False, allow_null=True)


class LogsQuerySerializer(serializers.Serializer):
    tail = serializers.IntegerField(required=False, min_value=0, allow_null=True)
    timestamps = serializers.BooleanField(required=False, default=False)


class RemoveQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)
