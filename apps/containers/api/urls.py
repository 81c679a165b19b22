from rest_framework.routers import SimpleRouter

from apps.containers.api.attach import ContainerAttachViewSet
from apps.containers.api.execs import ExecViewSet
from apps.containers.api.files import ContainerFilesViewSet
from apps.containers.api.views import ContainerViewSet

router = SimpleRouter()
router.register("containers", ContainerViewSet, basename="container")
router.register("containers", ContainerAttachViewSet, basename="container-attach")
router.register("containers", ContainerFilesViewSet, basename="container-files")
router.register("execs", ExecViewSet, basename="exec")

urlpatterns = router.urls
