from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.teams.api.events import EventsView
from apps.teams.api.views import TeamViewSet

router = SimpleRouter()
router.register("teams", TeamViewSet, basename="team")

urlpatterns = [path("events/", EventsView.as_view(), name="events"), *router.urls]
