from django.contrib import admin

from apps.images.models import Image, Registry


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("reference", "host", "team", "size", "updated")
    list_filter = ("host",)
    search_fields = ("reference", "digest")
    readonly_fields = (
        "host",
        "reference",
        "digest",
        "image_id",
        "size",
        "created",
        "config",
        "repo_digests",
        "history",
    )


@admin.register(Registry)
class RegistryAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "host", "username", "insecure", "created_at")
    list_filter = ("team",)
    search_fields = ("name", "host")
    # Registries are managed through the API, which validates the URL and encrypts the password.
    exclude = ("password_encrypted",)
    readonly_fields = (
        "team",
        "name",
        "url",
        "host",
        "username",
        "insecure",
        "mirrors",
        "created_at",
    )

    def has_add_permission(self, request):
        return False
