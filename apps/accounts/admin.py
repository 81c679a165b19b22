from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from apps.accounts.models import ApiToken, User

admin.site.register(User, UserAdmin)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "read_only",
        "created",
        "expires",
        "last_used",
        "revoked",
    )
    list_filter = ("read_only", "revoked")
    search_fields = ("prefix", "name", "user__username")
    # The hash is useless to a human and editing it would silently break the token.
    readonly_fields = ("prefix", "key_hash", "created", "last_used")
