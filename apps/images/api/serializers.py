"""Image and registry JSON, and the request bodies of image actions.

Request serializers only check shapes and document the API; the service
functions make every decision, so other callers get the same rules.
"""

from rest_framework import serializers

from apps.images.models import Image, Registry


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
            "repo_digests",
            "size",
            "created",
            "config",
            "updated",
        ]
        read_only_fields = fields


class RegistrySerializer(serializers.ModelSerializer):
    """A registry as the API shows it: the password never leaves, only ``has_password``."""

    team = serializers.CharField(source="team.slug", read_only=True)
    has_password = serializers.BooleanField(read_only=True)

    class Meta:
        model = Registry
        fields = [
            "id",
            "name",
            "team",
            "url",
            "host",
            "username",
            "has_password",
            "insecure",
            "mirrors",
            "created_at",
        ]
        read_only_fields = fields


class RegistryWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    url = serializers.CharField(
        max_length=500, help_text='"https://registry.example:5000" or "http://127.0.0.1:5000"'
    )
    username = serializers.CharField(required=False, allow_blank=True, max_length=200)
    password = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        write_only=True,
        max_length=1000,
        trim_whitespace=False,
        help_text='write-only; "" removes it',
    )
    insecure = serializers.BooleanField(required=False, help_text="plain HTTP or unverified TLS")
    mirrors = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, help_text="mirror URLs"
    )
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class PullSerializer(serializers.Serializer):
    reference = serializers.CharField(help_text='e.g. "127.0.0.1:5000/app:1" or "busybox"')
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class PushSerializer(serializers.Serializer):
    reference = serializers.CharField(
        required=False, allow_blank=True, help_text="push as this reference (tagged first)"
    )
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class TagSerializer(serializers.Serializer):
    reference = serializers.CharField(help_text="the new reference")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class PruneSerializer(serializers.Serializer):
    host = serializers.CharField(help_text="host name")
    all = serializers.BooleanField(
        required=False, default=False, help_text="every unused image, not only dangling ones"
    )


class SaveSerializer(serializers.Serializer):
    references = serializers.ListField(child=serializers.CharField(), allow_empty=False)
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    format = serializers.ChoiceField(choices=["docker", "oci"], required=False, default="docker")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class UploadQuerySerializer(serializers.Serializer):
    host = serializers.CharField(required=False, allow_blank=True, help_text="host name")
    team = serializers.SlugField(required=False, allow_blank=True, help_text="team slug")


class ImportQuerySerializer(UploadQuerySerializer):
    reference = serializers.CharField(help_text="reference of the imported image")


class RemoveQuerySerializer(serializers.Serializer):
    force = serializers.BooleanField(required=False, default=False)


class RemoveResultSerializer(serializers.Serializer):
    untagged = serializers.ListField(child=serializers.CharField())
    deleted = serializers.ListField(child=serializers.CharField())


class PruneResultSerializer(serializers.Serializer):
    deleted = serializers.ListField(child=serializers.CharField())
    reclaimed = serializers.IntegerField()


class HistorySerializer(serializers.Serializer):
    reference = serializers.CharField()
    history = serializers.ListField(child=serializers.DictField())
