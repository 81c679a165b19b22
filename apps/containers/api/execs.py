"""REST endpoints for exec sessions; state changes go through ``apps.containers.execs``.

    POST /api/execs/                      create (and by default start) an exec
    GET  /api/execs/?container=<id>       the execs the caller may see
    GET  /api/execs/<id>/                 state, pid, exit code
    POST /api/execs/<id>/start/           start one created with "start": false
    POST /api/execs/<id>/input/           raw body → stdin (``?close=1`` ends stdin)
    POST /api/execs/<id>/resize/          {"rows", "columns"} of its terminal
    POST /api/execs/<id>/kill/            {"signal"}
    GET  /api/execs/<id>/output/          stdout and stderr as one raw stream until exit;
                                          ``Accept: text/event-stream`` gives resumable
                                          events (``id`` = stream entry id, base64 data)
"""

from __future__ import annotations

import base64

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, parsers, renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.containers import execs, logs, relay
from apps.containers.api import streams
from apps.containers.models import Container, Exec
from apps.teams.api.base import TeamScopedViewSet
from apps.teams.services import restrict_to_teams
from berth.api import JsonErrorsMixin
from berth.errors import NotFound


class ExecSerializer(serializers.ModelSerializer):
    class Meta:
        model = Exec
        fields = ["id", "container", "command", "env", "user", "working_dir", "tty",
                  "attach_stdin", "state", "pid", "exit_code", "error", "created_at",
                  "started_at", "finished_at"]
        read_only_fields = fields


class ExecCreateSerializer(serializers.Serializer):
    container = serializers.CharField()
    command = serializers.JSONField()
    env = serializers.JSONField(required=False)
    user = serializers.JSONField(required=False)
    working_dir = serializers.JSONField(required=False)
    tty = serializers.JSONField(required=False)
    stdin = serializers.JSONField(required=False)
    start = serializers.BooleanField(default=True)


class ResizeSerializer(serializers.Serializer):
    rows = serializers.JSONField()
    columns = serializers.JSONField()


class SignalSerializer(serializers.Serializer):
    signal = serializers.JSONField(default=9)


class RawParser(parsers.BaseParser):
    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return stream.read()


class ExecViewSet(JsonErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                  TeamScopedViewSet):
    queryset = Exec.objects.select_related("container__team", "container__host")
    serializer_class = ExecSerializer
    team_field = "container__team"

    def get_queryset(self):
        rows = super().get_queryset()
        container = self.request.query_params.get("container")
        return rows.filter(container_id=container) if container else rows

    @extend_schema(request=ExecCreateSerializer, responses={201: ExecSerializer})
    def create(self, request):
        body = ExecCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        container = _container(request.user, data.pop("container"))
        start = data.pop("start")
        created = execs.create_exec(request.user, container, data)
        if start:
            created = execs.start_exec(request.user, created)
        return Response(ExecSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: ExecSerializer})
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        started = execs.start_exec(request.user, self.get_object())
        return Response(ExecSerializer(started).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request={"application/octet-stream": OpenApiTypes.BINARY},
                   responses={204: None})
    @action(detail=True, methods=["post"], parser_classes=[RawParser])
    def input(self, request, pk=None):
        close = request.query_params.get("close") in ("1", "true")
        execs.send_input(request.user, self.get_object(), request.data or b"", close=close)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ResizeSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def resize(self, request, pk=None):
        body = ResizeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execs.resize_exec(request.user, self.get_object(), body.validated_data["rows"],
                          body.validated_data["columns"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=SignalSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def kill(self, request, pk=None):
        body = SignalSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        execs.kill_exec(request.user, self.get_object(), body.validated_data["signal"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              (200, streams.EVENT_STREAM): OpenApiTypes.STR})
    @action(detail=True, methods=["get"],
            renderer_classes=[renderers.JSONRenderer, streams.EventStreamRenderer])
    def output(self, request, pk=None):
        """An exec's output is a shell's: only who may run one may read it."""
        exec_ = self.get_object()
        execs.require_operator(request.user, exec_.container)
        wants_events = streams.EVENT_STREAM in request.META.get("HTTP_ACCEPT", "")
        if wants_events:
            after = request.META.get("HTTP_LAST_EVENT_ID") or request.query_params.get("after")
            after = logs.parse_entry_id(after, "after") if after else "0"
            return streams.event_stream_response(_events(exec_.id, after))
        response = streams.text_response(_raw(exec_.id))
        response["Content-Type"] = "application/octet-stream"
        return response


def _container(user, container_id: str) -> Container:
    rows = restrict_to_teams(Container.objects.select_related("team", "host"), user)
    container = rows.filter(pk=container_id).first()
    if container is None:
        raise NotFound(f"no such container: {container_id}")
    return container


async def _raw(exec_id: str):
    async for batch in relay.follow_async(exec_id):
        data = b"".join(entry.data for entry in batch)
        if data:
            yield data


async def _events(exec_id: str, after: str):
    async for batch in relay.follow_async(exec_id, after):
        if not batch:
            yield streams.KEEPALIVE
        for entry in batch:
            if entry.stream == "exit":
                yield streams.sse({"exit_code": entry.exit_code, "error": entry.error},
                                  event="exit", entry_id=entry.id)
            else:
                yield streams.sse({"data": base64.b64encode(entry.data).decode()},
                                  event=entry.stream, entry_id=entry.id)
