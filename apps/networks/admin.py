from django.contrib import admin

from apps.networks.models import Network


@admin.register(Network)
class NetworkAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "host", "subnet", "gateway", "bridge", "created")
    list_filter = ("host", "team")
    search_fields = ("name", "engine_name", "subnet")
