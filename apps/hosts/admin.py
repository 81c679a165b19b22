from django.contrib import admin

from apps.hosts.models import Host


@admin.register(Host)
class HostAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "agent_version", "cpus", "memory_bytes", "last_heartbeat")
    list_filter = ("status",)
    search_fields = ("name",)
    # Facts come from the agent and would be overwritten on its next registration.
    readonly_fields = (
        "kernel",
        "cgroup_version",
        "cpus",
        "memory_bytes",
        "agent_version",
        "last_heartbeat",
        "registered_at",
    )
