from django.contrib import admin

from apps.operations.models import Operation


@admin.register(Operation)
class OperationAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "status", "team", "host", "target", "created_at")
    list_filter = ("kind", "status", "team", "host")
    search_fields = ("id", "target")
    # Status and results belong to the agent's reports.
    readonly_fields = (
        "id",
        "kind",
        "status",
        "team",
        "user",
        "host",
        "target",
        "progress",
        "result",
        "error",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request):
        return False  # operations are started through the API so the agent hears about them
