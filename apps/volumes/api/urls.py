from rest_framework.routers import SimpleRouter

from apps.volumes.api.views import VolumeViewSet

router = SimpleRouter()
router.register("volumes", VolumeViewSet, basename="volume")

urlpatterns = router.urls
