"""REST endpoints for containers; all state changes go through ``apps.containers.services``.

Long-lived answers (followed logs, events, stats streams, wait) are built in
``apps.containers.api.streams``.
"""

import json

from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, renderers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.containers import logs, services
from apps.containers.api import streams
from apps.containers.api.serializers import (
    ContainerCreateSerializer,
    ContainerSerializer,
    KillSerializer,
    LogEventsQuerySerializer,
    LogsQuerySerializer,
    RemoveQuerySerializer,
    RenameSerializer,
    StatsQuerySerializer,
    StatsSerializer,
    StopSerializer,
    UpdateSerializer,
    WaitQuerySerializer,
    WaitResultSerializer,
)
from apps.containers.models import Container
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin
from berth.errors import InvalidInput

ACCEPTED = {202: ContainerSerializer, 409: OpenApiResponse(description="wrong state")}
LABEL_PARAMETER = OpenApiParameter(
    "label",
    str,
    many=True,
    description='"key" (has the label) or "key=value"; repeat to require several',
)


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
        if self.action == "list":
            rows = _with_labels(rows, params.getlist("label"))
        return rows

    @extend_schema(parameters=[LABEL_PARAMETER])
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

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
        services.remove_container(container, force=query["force"], volumes=query["volumes"])
        return _accepted(container)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a created or exited container."""
        container = self.get_object()
        services.start_container(container)
        return _accepted(container)

    @extend_schema(request=StopSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        container = self.get_object()
        body = _body(StopSerializer, request)
        services.stop_container(container, body.get("timeout"))
        return _accepted(container)

    @extend_schema(request=StopSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def restart(self, request, pk=None):
        container = self.get_object()
        body = _body(StopSerializer, request)
        services.restart_container(container, body.get("timeout"))
        return _accepted(container)

    @extend_schema(request=KillSerializer, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def kill(self, request, pk=None):
        container = self.get_object()
        body = _body(KillSerializer, request)
        services.kill_container(container, body.get("signal"))
        return _accepted(container)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        container = self.get_object()
        services.pause_container(container)
        return _accepted(container)

    @extend_schema(request=None, responses=ACCEPTED)
    @action(detail=True, methods=["post"])
    def unpause(self, request, pk=None):
        container = self.get_object()
        services.unpause_container(container)
        return _accepted(container)

    @extend_schema(
        request=UpdateSerializer,
        responses={200: ContainerSerializer, 409: OpenApiResponse(description="not on its host")},
    )
    @action(detail=True, methods=["post"], url_path="update", url_name="update")
    def update_limits(self, request, pk=None):
        """Change limits and the restart policy (live on a running container)."""
        container = self.get_object()
        body = _body(UpdateSerializer, request)
        container = services.update_container(container, body)
        return Response(ContainerSerializer(container).data)

    @extend_schema(request=RenameSerializer, responses={200: ContainerSerializer})
    @action(detail=True, methods=["post"])
    def rename(self, request, pk=None):
        container = self.get_object()
        body = _body(RenameSerializer, request)
        container = services.rename_container(container, body.get("name"))
        return Response(ContainerSerializer(container).data)

    @extend_schema(parameters=[WaitQuerySerializer], responses={200: WaitResultSerializer})
    @action(detail=True, methods=["get"])
    def wait(self, request, pk=None):
        """Long-poll until the container exited or was removed, or ``timeout`` seconds passed.

        Always 200: ``timed_out`` says which. Under ASGI the headers are sent at
        once and the JSON when it is known (after leading spaces while waiting).
        """
        container = self.get_object()
        timeout = _query(WaitQuerySerializer, request)["timeout"]
        row = services.current_state(container.id)
        if streams.wait_finished(row):
            known = {"exit_code": container.exit_code, "oom_killed": container.oom_killed}
            return Response(streams.wait_result(row, known))
        if timeout == 0:
            return Response(streams.wait_result(row, row, timed_out=True))
        if streams.is_asgi(request):
            body = streams.wait_body(container.id, container.team_id, timeout, row)
            return StreamingHttpResponse(body, content_type="application/json")
        return Response(streams.wait_blocking(container.id, timeout, row))

    @extend_schema(
        parameters=[StatsQuerySerializer],
        responses={
            200: StatsSerializer,
            (200, streams.EVENT_STREAM): OpenApiTypes.STR,
            409: OpenApiResponse(description="not running"),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[renderers.JSONRenderer, streams.EventStreamRenderer],
    )
    def stats(self, request, pk=None):
        """One sample from the host; ``?stream=1``: Server-Sent Events, one a second, with
        ``cpu_percent`` computed from consecutive samples."""
        container = self.get_object()
        stream = _query(StatsQuerySerializer, request)["stream"]
        sample = services.container_stats(container)
        if not stream:
            return Response(sample)
        return streams.event_stream_response(streams.stats_events(container, sample))

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
        """Log text from the log stream (else the host's files); ``follow=1`` streams on
        until the container finished."""
        container = self.get_object()
        query = _log_query(LogsQuerySerializer, request)
        read = services.read_container_logs(container, query)
        if query.follow and read.last_id is not None:
            response = streams.text_response(streams.follow_log_text(container.id, read, query))
        else:
            response = Response(read.text, content_type=streams.TEXT)
        response["X-Berth-Log-Source"] = read.source
        return response

    @extend_schema(
        parameters=[
            LogEventsQuerySerializer,
            OpenApiParameter("Last-Event-ID", str, OpenApiParameter.HEADER),
        ],
        responses={(200, streams.EVENT_STREAM): OpenApiTypes.STR},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="logs/events",
        url_name="logs-events",
        renderer_classes=[streams.EventStreamRenderer, renderers.JSONRenderer],
    )
    def logs_events(self, request, pk=None):
        """The log records as Server-Sent Events (``id`` = stream entry id), following by
        default; resumes after ``Last-Event-ID`` (or ``?after``) without gaps or repeats."""
        container = self.get_object()
        query = _log_query(LogEventsQuerySerializer, request)
        after = _resume_after(request)
        page = services.read_log_records(container, query, after)
        return streams.event_stream_response(streams.log_events(container.id, page, query))


def _accepted(container) -> Response:
    return Response(ContainerSerializer(container).data, status=status.HTTP_202_ACCEPTED)


def _with_labels(rows, filters: list[str]):
    for index, text in enumerate(text for text in filters if text):
        key, has_value, value = text.partition("=")
        if not key:
            raise InvalidInput('label filters are "key" or "key=value"', field="label")
        if not has_value:
            rows = rows.filter(labels__has_key=key)
            continue
        alias = f"label_{index}"
        text = Cast(KeyTextTransform(key, "labels"), output_field=TextField())
        rows = rows.alias(**{alias: text}).filter(**{alias: value})
    return rows


def _log_query(serializer_class, request) -> logs.LogQuery:
    params = _query(serializer_class, request)
    return logs.make_query(
        tail=params.get("tail"),
        since=params.get("since"),
        until=params.get("until"),
        timestamps=params["timestamps"],
        stdout=params["stdout"],
        stderr=params["stderr"],
        follow=params["follow"],
    )


def _resume_after(request) -> str | None:
    """The entry id to resume after: the Last-Event-ID an EventSource sends when it
    reconnects wins over ``?after`` (which its URL may still carry from the start)."""
    header = request.META.get("HTTP_LAST_EVENT_ID", "").strip()
    if header:
        return logs.parse_entry_id(header, "Last-Event-ID")
    after = request.query_params.get("after", "").strip()
    return logs.parse_entry_id(after, "after") if after else None


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def _body(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
