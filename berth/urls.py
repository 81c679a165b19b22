"""URL map: the JSON API under /api/, HTML pages at the root, admin at /admin/."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from berth.api import JsonErrorsMixin, json_error_or


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


# Anonymous visitors go to the one login page instead of the admin's own.
admin.site.login = login_required(admin.site.login)

api_patterns = [
    path("", include("apps.accounts.api.urls")),
    path("", include("apps.teams.api.urls")),
    path("", include("apps.hosts.api.urls")),
    path("", include("apps.images.api.urls")),
    path("", include("apps.operations.api.urls")),
    path("", include("apps.containers.api.urls")),
    path("", include("apps.volumes.api.urls")),
    path("", include("apps.networks.api.urls")),
    path("", include("apps.audit.api.urls")),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("schema/ui/", SpectacularSwaggerView.as_view(url_name="schema"), name="schema-ui"),
]

urlpatterns = [
    path("api/", include(api_patterns)),
    path("admin/", admin.site.urls),
    path("", include("apps.dashboard.urls")),
]

handler404 = json_error_or(defaults.page_not_found, 404, "not_found", "Not found.")
handler500 = json_error_or(defaults.server_error, 500, "server_error", "Internal server error.")
