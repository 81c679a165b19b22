from rest_framework.routers import SimpleRouter

from apps.hosts.api.views import HostViewSet

router = SimpleRouter()
router.register("hosts", HostViewSet, basename="host")

urlpatterns = router.urls
