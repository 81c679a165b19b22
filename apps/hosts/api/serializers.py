from rest_framework import serializers

from apps.hosts.models import Host, JoinToken


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "status",
            "cordoned",
            "kernel",
            "cgroup_version",
            "cpus",
            "memory_bytes",
            "agent_version",
            "last_heartbeat",
            "registered_at",
            "labels",
        ]
        read_only_fields = [field for field in fields if field != "labels"]


class HostLabelsSerializer(serializers.Serializer):
    labels = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=200))


class DrainSerializer(serializers.Serializer):
    timeout = serializers.IntegerField(
        required=False, min_value=0, max_value=3600, default=10, help_text="seconds before SIGKILL"
    )


class DrainResultSerializer(serializers.Serializer):
    host = HostSerializer()
    stopped = serializers.IntegerField(help_text="containers asked to stop")


class JoinTokenSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = JoinToken
        fields = [
            "id",
            "name",
            "prefix",
            "host_name",
            "created_by",
            "created",
            "expires",
            "used_at",
            "host",
            "revoked",
        ]
        read_only_fields = fields


class JoinTokenCreateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=100, default="")
    host_name = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        help_text="only this host may join with it (needed to re-join an existing host)",
    )
    ttl_hours = serializers.IntegerField(required=False, min_value=1, default=24)


class JoinTokenCreatedSerializer(JoinTokenSerializer):
    key = serializers.CharField(read_only=True, help_text="shown only in this response")

    class Meta(JoinTokenSerializer.Meta):
        fields = [*JoinTokenSerializer.Meta.fields, "key"]
        read_only_fields = fields


class JoinSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, help_text="the joining host's name")


class JoinedSerializer(serializers.Serializer):
    host = serializers.CharField()
    broker_url = serializers.CharField(help_text="REDIS_URL for the agent; shown only once")
    queue = serializers.CharField()
    signing_key = serializers.CharField(help_text="BERTH_HOST_KEY for the agent; shown only once")
