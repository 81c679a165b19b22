from rest_framework.routers import SimpleRouter

from apps.containers.api.views import ContainerViewSet

router = SimpleRouter()
router.register("containers", ContainerViewSet, basename="container")

urlpatterns = router.urls
