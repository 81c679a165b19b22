from rest_framework.routers import SimpleRouter

from apps.images.api.views import ImageViewSet, RegistryViewSet

router = SimpleRouter()
router.register("images", ImageViewSet, basename="image")
router.register("registries", RegistryViewSet, basename="registry")

urlpatterns = router.urls
