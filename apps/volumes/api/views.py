"""REST endpoints for volumes; every change goes through ``apps.volumes.services``."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.teams.api.base import TeamScopedViewSet
from apps.volumes import services
from apps.volumes.api.serializers import (
    VolumeCreateSerializer,
    VolumeDetailSerializer,
    VolumePruneResultSerializer,
    VolumePruneSerializer,
    VolumeRemoveQuerySerializer,
    VolumeRemoveResultSerializer,
    VolumeSerializer,
)
from apps.volumes.models import Volume
from berth.api import JsonErrorsMixin


class VolumeViewSet(
    JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet
):
    """The caller's teams' volumes; ``?host=`` and ``?anonymous=true|false`` filter;
    ``?size=1`` asks the hosts for current sizes first."""

    queryset = Volume.objects.select_related("host", "team")
    serializer_class = VolumeSerializer

    def get_queryset(self):
        rows = super().get_queryset()
        params = self.request.query_params
        if params.get("host"):
            rows = rows.filter(host__name=params["host"])
        if params.get("anonymous") in ("true", "false"):
            rows = rows.filter(anonymous=params["anonymous"] == "true")
        return rows

    def list(self, request, *args, **kwargs):
        if request.query_params.get("size") in ("1", "true"):
            services.refresh_sizes(self.get_queryset())
        return super().list(request, *args, **kwargs)

    @extend_schema(request=VolumeCreateSerializer, responses={201: VolumeSerializer})
    def create(self, request, *args, **kwargs):
        body = _valid(VolumeCreateSerializer, request.data)
        volume, created = services.create_volume(request.user, body)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(VolumeSerializer(volume).data, status=code)

    @extend_schema(responses={200: VolumeDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        """The volume with its size on disk and users, asked from its host."""
        volume = self.get_object()
        details = services.inspect_volume(volume)
        return Response({**VolumeSerializer(volume).data, **details})

    @extend_schema(
        parameters=[VolumeRemoveQuerySerializer],
        responses={200: VolumeRemoveResultSerializer, 409: OpenApiResponse(description="in use")},
    )
    def destroy(self, request, *args, **kwargs):
        volume = self.get_object()
        query = _valid(VolumeRemoveQuerySerializer, request.query_params)
        return Response(services.remove_volume(volume, force=query["force"]))

    @extend_schema(request=VolumePruneSerializer, responses={200: VolumePruneResultSerializer})
    @action(detail=False, methods=["post"])
    def prune(self, request):
        body = _valid(VolumePruneSerializer, request.data)
        return Response(services.prune_volumes(request.user, body))


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
