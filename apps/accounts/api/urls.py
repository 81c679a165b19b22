from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api.views import ApiTokenViewSet, MeView, TotpConfirmView, TotpView

router = SimpleRouter()
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("me/totp/", TotpView.as_view(), name="totp"),
    path("me/totp/confirm/", TotpConfirmView.as_view(), name="totp-confirm"),
    *router.urls,
]
