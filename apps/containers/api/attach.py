"""Attach endpoints: a container's own stdin/terminal in, its log stream out.

    POST /api/containers/<id>/attach/          start feeding input; answers the log id to
                                               follow output after (logs/events/?after=)
    POST /api/containers/<id>/attach/input/    raw body → the container's stdin or terminal
                                               (``?close=1``: then end of file)
    POST /api/containers/<id>/attach/resize/   {"rows", "columns"} of its terminal
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.containers import attach
from apps.containers.api.execs import RawParser, ResizeSerializer
from apps.containers.models import Container
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin

AttachAnswer = inline_serializer("AttachAnswer", {"after": serializers.CharField()})


class ContainerAttachViewSet(JsonErrorsMixin, TeamScopedViewSet):
    queryset = Container.objects.select_related("team", "host")

    @extend_schema(request=None, responses={200: AttachAnswer})
    @action(detail=True, methods=["post"], url_path="attach", url_name="attach")
    def attach(self, request, pk=None):
        return Response({"after": attach.attach(request.user, self.get_object())})

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY},
                   responses={204: None})
    @action(detail=True, methods=["post"], url_path="attach/input", url_name="attach-input",
            parser_classes=[RawParser])
    def attach_input(self, request, pk=None):
        close = request.query_params.get("close") in ("1", "true")
        attach.send_input(request.user, self.get_object(), request.data or b"", close=close)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ResizeSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="attach/resize", url_name="attach-resize")
    def attach_resize(self, request, pk=None):
        body = ResizeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        attach.resize(request.user, self.get_object(), body.validated_data["rows"],
                      body.validated_data["columns"])
        return Response(status=status.HTTP_204_NO_CONTENT)
