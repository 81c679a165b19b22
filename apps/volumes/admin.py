from django.contrib import admin

from apps.volumes.models import Volume


@admin.register(Volume)
class VolumeAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "host", "driver", "anonymous", "size", "created")
    list_filter = ("driver", "anonymous")
    search_fields = ("name", "engine_name")
