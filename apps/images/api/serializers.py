from rest_framework import serializers

from apps.images.models import Image


class ImageSerializer(serializers.ModelSerializer):
    host = serializers.SlugRelatedField(slug_field="name", read_only=True)
    team = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Image
        fields = [
            "id",
            "reference",
            "host",
            "team",
            "digest",
            "image_id",
            "size",
            "created",
            "config",
            "updated",
        ]
        read_only_fields = fields
