from rest_framework import serializers

from apps.hosts.models import Host


class HostSerializer(serializers.ModelSerializer):
    class Meta:
        model = Host
        fields = [
            "id",
            "name",
            "status",
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
