from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.operations.api.views import OperationViewSet, TransferView

router = SimpleRouter()
router.register("operations", OperationViewSet, basename="operation")

urlpatterns = [
    *router.urls,
    path("transfers/<str:token>/", TransferView.as_view(), name="transfer"),
]
