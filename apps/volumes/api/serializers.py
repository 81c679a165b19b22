"""Volume JSON and the request bodies of volume actions (shapes only: the services decide)."""

from rest_framework import serializers

from apps.volumes.models import Volume


class VolumeSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Volume
        fields = [
            "id",
            "name",
            "team",
            "host",
            "driver",
            "labels",
            "anonymous",
            "created",
            "size",
            "size_updated",
        ]
        read_only_fields = fields


class VolumeDetailSerializer(VolumeSerializer):
    """Inspect: the row plus the agent's view."""

    in_use_by = serializers.ListField(child=serializers.CharField(), read_only=True)
    mountpoint = serializers.CharField(read_only=True)

    class Meta(VolumeSerializer.Meta):
        fields = [*VolumeSerializer.Meta.fields, "in_use_by", "mountpoint"]
        read_only_fields = fields


class VolumeCreateSerializer(serializers.Serializer):
    name = serializers.JSONField(required=False, help_text="2-64 characters; random if absent")
    team = serializers.CharField(required=False, help_text="team slug")
    host = serializers.CharField(required=False, help_text="host name; default: an online one")
    driver = serializers.JSONField(required=False, help_text='only "local"')
    labels = serializers.JSONField(required=False)


class VolumeRemoveQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)


class VolumeRemoveResultSerializer(serializers.Serializer):
    removed = serializers.ListField(child=serializers.CharField())
    reclaimed = serializers.IntegerField()


class VolumePruneSerializer(serializers.Serializer):
    team = serializers.CharField(required=False)
    all = serializers.BooleanField(required=False, default=False)
    labels = serializers.JSONField(required=False)


class VolumePruneResultSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.CharField())
    reclaimed = serializers.IntegerField()
