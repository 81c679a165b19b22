from django.contrib import admin

from apps.images.models import Image


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("reference", "host", "team", "size", "updated")
    list_filter = ("host",)
    search_fields = ("reference", "digest")
    readonly_fields = ("host", "reference", "digest", "image_id", "size", "created", "config")
