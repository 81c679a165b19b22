"""REST endpoints for networks; every change goes through ``apps.networks.services``."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.networks import services
from apps.networks.api.serializers import (
    ConnectSerializer,
    ContainerNetworkSerializer,
    NetworkCreateSerializer,
    NetworkDetailSerializer,
    NetworkSerializer,
)
from apps.networks.models import Network
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin


class NetworkViewSet(
    JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, TeamScopedViewSet
):
    """The caller's teams' networks; ``?host=`` filters. Every host also has the
    predefined ``bridge``, ``host`` and ``none``, which containers name directly."""

    queryset = Network.objects.select_related("host", "team")
    serializer_class = NetworkSerializer

    def get_queryset(self):
        rows = super().get_queryset()
        if self.request.query_params.get("host"):
            rows = rows.filter(host__name=self.request.query_params["host"])
        return rows

    @extend_schema(request=NetworkCreateSerializer, responses={201: NetworkSerializer})
    def create(self, request, *args, **kwargs):
        body = _valid(NetworkCreateSerializer, request.data)
        network = services.create_network(request.user, body)
        return Response(NetworkSerializer(network).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: NetworkDetailSerializer})
    def retrieve(self, request, *args, **kwargs):
        network = self.get_object()
        return Response({**NetworkSerializer(network).data,
                         **services.inspect_network(network)})

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="in use")})
    def destroy(self, request, *args, **kwargs):
        services.remove_network(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ConnectSerializer, responses={200: ContainerNetworkSerializer})
    @action(detail=True, methods=["post"])
    def connect(self, request, pk=None):
        network = self.get_object()
        return Response(services.connect(network, _valid(ConnectSerializer, request.data)))

    @extend_schema(request=ConnectSerializer, responses={200: ContainerNetworkSerializer})
    @action(detail=True, methods=["post"])
    def disconnect(self, request, pk=None):
        network = self.get_object()
        return Response(services.disconnect(network, _valid(ConnectSerializer, request.data)))


    @extend_schema(responses={200: ContainerNetworkSerializer})
    @action(detail=False, methods=["get"], url_path=r"containers/(?P<container_id>[0-9a-f]{64})")
    def container(self, request, container_id=None):
        """A container's network mode, addresses and published host ports."""
        return Response(services.container_network(request.user, container_id))


def _valid(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)
