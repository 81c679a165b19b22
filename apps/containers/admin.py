from django.contrib import admin

from apps.containers.models import Container


@admin.register(Container)
class ContainerAdmin(admin.ModelAdmin):
    list_display = ("name", "short_id", "team", "host", "image_reference", "state", "created_at")
    list_filter = ("state", "team", "host")
    search_fields = ("id", "name", "image_reference")
    # State belongs to the agent's reports; editing it here would be overwritten or lie.
    readonly_fields = (
        "id",
        "team",
        "host",
        "image",
        "image_reference",
        "command",
        "env",
        "labels",
        "restart_policy",
        "auto_remove",
        "options",
        "state",
        "state_seq",
        "pid",
        "exit_code",
        "error",
        "oom_killed",
        "restart_count",
        "created_at",
        "started_at",
        "finished_at",
    )

    def has_add_permission(self, request):
        return False  # containers are created through the API so the agent hears about them
