from rest_framework import mixins

from apps.images.api.serializers import ImageSerializer
from apps.images.models import Image
from apps.teams.api.base import TeamScopedViewSet


class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet):
    """Read-only: images appear when agents report them, not through the API."""

    queryset = Image.objects.select_related("host", "team")
    serializer_class = ImageSerializer
    shared_team_null = True

    def get_queryset(self):
        rows = super().get_queryset()
        host = self.request.query_params.get("host")
        return rows.filter(host__name=host) if host else rows
