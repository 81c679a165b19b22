from rest_framework.routers import SimpleRouter

from apps.containers.api.execs import ExecViewSet
from apps.containers.api.views import ContainerViewSet

router = SimpleRouter()
router.register("containers", ContainerViewSet, basename="container")
router.register("execs", ExecViewSet, basename="exec")

urlpatterns = router.urls
