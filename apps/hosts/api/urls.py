from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.hosts.api.views import HostViewSet, JoinTokenViewSet, JoinView

router = SimpleRouter()
router.register("join-tokens", JoinTokenViewSet, basename="join-token")
router.register("hosts", HostViewSet, basename="host")

urlpatterns = [path("join/", JoinView.as_view(), name="host-join"), *router.urls]
