from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts.forms import LoginForm
from apps.dashboard import account_views, container_views, image_views, resource_views, views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("hosts/", views.hosts, name="hosts"),
    path("containers/", container_views.container_list, name="containers"),
    path("containers/new/", container_views.container_create, name="container-create"),
    path("containers/bulk/", container_views.bulk_action, name="containers-bulk"),
    path("containers/<str:container_id>/", container_views.container_detail, name="container"),
    path("containers/<str:container_id>/row/", container_views.container_row,
         name="container-row"),
    path("containers/<str:container_id>/exec/", container_views.container_exec,
         name="container-exec"),
    path("containers/<str:container_id>/rename/", container_views.container_rename,
         name="container-rename"),
    path("containers/<str:container_id>/<str:action>/", container_views.container_action,
         name="container-action"),
    path("images/", image_views.image_list, name="images"),
    path("images/pull/", image_views.image_pull, name="image-pull"),
    path("images/<int:image_id>/tag/", image_views.image_tag, name="image-tag"),
    path("images/<int:image_id>/push/", image_views.image_push, name="image-push"),
    path("images/<int:image_id>/save/", image_views.image_save, name="image-save"),
    path("images/<int:image_id>/remove/", image_views.image_remove, name="image-remove"),
    path("operations/", image_views.operation_list, name="operations"),
    path("operations/<str:operation_id>/", image_views.operation_detail, name="operation"),
    path("registries/", image_views.registry_list, name="registries"),
    path("registries/new/", image_views.registry_create, name="registry-create"),
    path("registries/<int:registry_id>/update/", image_views.registry_update,
         name="registry-update"),
    path("registries/<int:registry_id>/delete/", image_views.registry_delete,
         name="registry-delete"),
    path("volumes/", resource_views.volume_list, name="volumes"),
    path("volumes/new/", resource_views.volume_create, name="volume-create"),
    path("volumes/<int:volume_id>/remove/", resource_views.volume_remove, name="volume-remove"),
    path("networks/", resource_views.network_list, name="networks"),
    path("networks/new/", resource_views.network_create, name="network-create"),
    path("networks/<int:network_id>/remove/", resource_views.network_remove,
         name="network-remove"),
    path("networks/<int:network_id>/<str:verb>/", resource_views.network_plug,
         name="network-plug"),
    path("audit/", resource_views.audit_list, name="audit"),
    path("tokens/", account_views.token_list, name="tokens"),
    path("tokens/new/", account_views.token_create, name="token-create"),
    path("tokens/<int:token_id>/revoke/", account_views.token_revoke, name="token-revoke"),
    path("teams/", account_views.team_list, name="teams"),
    path("teams/<int:team_id>/members/", account_views.team_member_set, name="team-member-set"),
    path("teams/<int:team_id>/members/remove/", account_views.team_member_remove,
         name="team-member-remove"),
    path("profile/", account_views.profile, name="profile"),
    path("profile/totp/<str:step>/", account_views.totp_step, name="totp"),
    path("api/docs/", views.api_docs, name="api-docs"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            redirect_authenticated_user=True, authentication_form=LoginForm
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
