"""REST endpoints for containers; all state changes go through ``apps.containers.services``."""

import json

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.containers import services
from apps.containers.api.serializers import (
    ContainerCreateSerializer,
    ContainerSerializer,
    KillSerializer,
    LogsQuerySerializer,
    RemoveQuerySerializer,
    StopSerializer,
)
from apps.containers.models import Container
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin


class PlainTextRenderer(renderers.BaseRenderer):
    media_type = "text/plain"
    format = "txt"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, str) else json.dumps(data)


class ContainerViewSet(
    JsonErrorsMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    TeamScopedViewSet,
):
    queryset = Container.objects.select_related("team", "host")
    serializer_class = ContainerSerializer

    def get_serializer_class(self):
        return ContainerCreateSerializer if self.action == "create" else ContainerSerializer

    def get_queryset(self):
        rows = super().get_queryset()
        params = self.request.query_params
        if params.get("state"):
            rows = rows.filter(state=params["state"])
        if params.get("team"):
            rows = rows.filter(team__slug=params["team"])
        return rows

    @extend_schema(request=ContainerCreateSerializer, responses={201: ContainerSerializer})
    def create(self, request, *args, **kwargs):
        payload = ContainerCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        container = services.create_container(request.user, payload.validated_data)
        return Response(ContainerSerializer(container).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[RemoveQuerySerializer],
        responses={202: ContainerSerializer, 409: OpenApiResponse(description="running")},
    )
    def destroy(self, request, *args, **kwargs):
        container = self.get_object()
        query = _query(RemoveQuerySerializer, request)
        services.remove_container(container, force=query["force"])
        return Response(ContainerSerializer(container).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=StopSerializer, responses={202: ContainerSerializer})
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        container = self.get_object()
        body = _body(StopSerializer, request)
        services.stop_container(container, body["timeout"])
        return Response(ContainerSerializer(container).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=KillSerializer, responses={202: ContainerSerializer})
    @action(detail=True, methods=["post"])
    def kill(self, request, pk=None):
        container = self.get_object()
        body = _body(KillSerializer, request)
        services.kill_container(container, body.get("signal"))
        return Response(ContainerSerializer(container).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[LogsQuerySerializer],
        responses={(200, "text/plain"): OpenApiTypes.STR},
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[PlainTextRenderer, renderers.JSONRenderer],
    )
    def logs(self, request, pk=None):
        container = self.get_object()
        query = _query(LogsQuerySerializer, request)
        text = services.read_logs(container, query.get("tail"), query["timestamps"])
        return Response(text, content_type="text/plain; charset=utf-8")


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
