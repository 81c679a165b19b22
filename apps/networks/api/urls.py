from rest_framework.routers import SimpleRouter

from apps.networks.api.views import NetworkViewSet

router = SimpleRouter()
router.register("networks", NetworkViewSet, basename="network")

urlpatterns = router.urls
