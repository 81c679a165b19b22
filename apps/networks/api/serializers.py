"""Network JSON and the request bodies of network actions (shapes only: the services decide)."""

from rest_framework import serializers

from apps.networks.models import Network


class NetworkSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Network
        fields = ["id", "name", "team", "host", "driver", "subnet", "gateway", "bridge",
                  "internal", "labels", "created"]
        read_only_fields = fields


class NetworkMemberSerializer(serializers.Serializer):
    container = serializers.CharField()
    name = serializers.CharField()
    ip = serializers.CharField(allow_null=True)
    prefixlen = serializers.IntegerField(allow_null=True)
    mac = serializers.CharField(allow_null=True)
    aliases = serializers.ListField(child=serializers.CharField())


class NetworkDetailSerializer(NetworkSerializer):
    """Inspect: the row plus its members and their addresses."""

    members = NetworkMemberSerializer(many=True, read_only=True)

    class Meta(NetworkSerializer.Meta):
        fields = [*NetworkSerializer.Meta.fields, "members"]
        read_only_fields = fields


class NetworkCreateSerializer(serializers.Serializer):
    name = serializers.JSONField(help_text="1-64 letters, digits, '_', '.' or '-'")
    team = serializers.CharField(required=False, help_text="team slug")
    host = serializers.CharField(required=False, help_text="host name; default: an online one")
    driver = serializers.JSONField(required=False, help_text='only "bridge"')
    subnet = serializers.JSONField(required=False, help_text="e.g. 10.1.0.0/24; else allocated")
    gateway = serializers.JSONField(required=False, help_text="default: the subnet's first host")
    internal = serializers.JSONField(required=False)
    labels = serializers.JSONField(required=False)


class ConnectSerializer(serializers.Serializer):
    container = serializers.JSONField(help_text="container id or name")
    aliases = serializers.JSONField(required=False)
    ip = serializers.JSONField(required=False)
    mac = serializers.JSONField(required=False)


class ContainerNetworkSerializer(serializers.Serializer):
    """A container's network as its agent reported it."""

    network_mode = serializers.CharField()
    networks = serializers.DictField()
    ports = serializers.ListField(child=serializers.DictField())
