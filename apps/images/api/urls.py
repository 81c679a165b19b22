from rest_framework.routers import SimpleRouter

from apps.images.api.views import ImageViewSet

router = SimpleRouter()
router.register("images", ImageViewSet, basename="image")

urlpatterns = router.urls
