"""A container's files: archives in and out, export, diff, top and commit.

    GET  /api/containers/<id>/archive/?path=   the path as a tar; its stat in the
                                               X-Docker-Container-Path-Stat header
    HEAD /api/containers/<id>/archive/?path=   only the stat header (404: no such path)
    PUT  /api/containers/<id>/archive/?path=   a tar body extracted into the directory path
                                               (``no_overwrite_dir_non_dir=1`` as Docker's)
    GET  /api/containers/<id>/export/          the flattened filesystem as a tar
    GET  /api/containers/<id>/changes/         [{"Path", "Kind"}]: 0 changed, 1 added, 2 deleted
    GET  /api/containers/<id>/top/?ps_args=    {"Titles", "Processes"}
    POST /api/containers/<id>/commit/          {"reference", "changes", "author", "comment",
                                               "pause"} → 201 with the new image

Archives and exports need an operator or owner (files may hold secrets); diff
and top are readable by viewers. All work is done by ``apps.containers.files``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import IO

from asgiref.sync import sync_to_async
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.containers import files
from apps.containers.api import streams
from apps.containers.models import Container
from apps.images.api.serializers import ImageSerializer
from apps.operations.api.streams import (
    ARCHIVE_TYPE,
    FILE_RENDERERS,
    public_base_url,
    upload_from_request,
)
from apps.operations.services import CHUNK_SIZE
from apps.teams.api.base import TeamScopedViewSet
from berth.api import JsonErrorsMixin

STAT_HEADER = "X-Docker-Container-Path-Stat"
PATH_PARAMETER = OpenApiParameter("path", str, required=True, description="path in the container")


class ArchiveQuerySerializer(serializers.Serializer):
    path = serializers.CharField(max_length=files.MAX_PATH, trim_whitespace=False)
    no_overwrite_dir_non_dir = serializers.BooleanField(required=False, default=False)


class TopQuerySerializer(serializers.Serializer):
    ps_args = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=files.MAX_PS_ARGS
    )


class CommitSerializer(serializers.Serializer):
    reference = serializers.CharField(required=False, allow_blank=True)
    changes = serializers.DictField(required=False)
    author = serializers.CharField(required=False, allow_blank=True)
    comment = serializers.CharField(required=False, allow_blank=True)
    pause = serializers.BooleanField(required=False, default=True)


class ChangeSerializer(serializers.Serializer):
    Path = serializers.CharField()
    Kind = serializers.IntegerField(help_text="0 changed, 1 added, 2 deleted")


class ContainerFilesViewSet(JsonErrorsMixin, TeamScopedViewSet):
    queryset = Container.objects.select_related("team", "host")

    @extend_schema(
        methods=["GET"],
        parameters=[PATH_PARAMETER],
        responses={(200, ARCHIVE_TYPE): OpenApiTypes.BINARY, 404: OpenApiResponse()},
    )
    @extend_schema(methods=["HEAD"], parameters=[PATH_PARAMETER], responses={200: None})
    @extend_schema(
        methods=["PUT"],
        parameters=[PATH_PARAMETER],
        request={ARCHIVE_TYPE: OpenApiTypes.BINARY},
        responses={200: None, 400: OpenApiResponse(description="not a directory, bad tar")},
    )
    @action(detail=True, methods=["get", "put", "head"], renderer_classes=FILE_RENDERERS)
    def archive(self, request, pk=None):
        """Copy files out of (GET) or into (PUT) the container, or stat a path (HEAD)."""
        container = self.get_object()
        query = _query(ArchiveQuerySerializer, request)
        if request.method == "PUT":
            files.copy_to(
                request.user,
                container,
                query["path"],
                upload_from_request(request, allow_multipart=False),
                base_url=public_base_url(request),
                no_overwrite_dir_non_dir=query["no_overwrite_dir_non_dir"],
            )
            return HttpResponse(status=status.HTTP_200_OK)
        if request.method == "HEAD":
            path_stat = files.path_stat(request.user, container, query["path"])
            response = HttpResponse(status=status.HTTP_200_OK)
            response[STAT_HEADER] = stat_header(path_stat)
            return response
        archive = files.copy_from(
            request.user, container, query["path"], base_url=public_base_url(request)
        )
        response = archive_response(request, archive, f"{archive.stat['name']}.tar")
        response[STAT_HEADER] = stat_header(archive.stat)
        return response

    @extend_schema(responses={(200, ARCHIVE_TYPE): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=FILE_RENDERERS)
    def export(self, request, pk=None):
        """The container's flattened filesystem as a tar (``docker export``)."""
        container = self.get_object()
        archive = files.export_container(
            request.user, container, base_url=public_base_url(request)
        )
        return archive_response(request, archive, f"{container.name}.tar")

    @extend_schema(responses={200: ChangeSerializer(many=True)})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer])
    def changes(self, request, pk=None):
        """What the container changed against its image (``docker diff``)."""
        return Response(files.container_changes(self.get_object()))

    @extend_schema(parameters=[TopQuerySerializer], responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"], renderer_classes=[renderers.JSONRenderer])
    def top(self, request, pk=None):
        """The container's processes, with ps columns (``docker top``)."""
        container = self.get_object()
        ps_args = _query(TopQuerySerializer, request)["ps_args"]
        return Response(files.container_top(container, ps_args))

    @extend_schema(request=CommitSerializer, responses={201: ImageSerializer})
    @action(detail=True, methods=["post"], renderer_classes=[renderers.JSONRenderer])
    def commit(self, request, pk=None):
        """A new image from the container's writable layer (``docker commit``)."""
        container = self.get_object()
        body = CommitSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        image = files.commit_container(request.user, container, dict(body.validated_data))
        return Response(ImageSerializer(image).data, status=status.HTTP_201_CREATED)


def stat_header(path_stat: dict) -> str:
    """Docker's header value: standard base64 of the stat's JSON."""
    return base64.b64encode(json.dumps(path_stat).encode()).decode()


def archive_response(request, archive: files.Archive, filename: str):
    """Stream the open archive; under ASGI with an async body, so it is never held whole."""
    if streams.is_asgi(request):
        response = StreamingHttpResponse(_read_async(archive.handle), content_type=ARCHIVE_TYPE)
    else:
        response = FileResponse(archive.handle, content_type=ARCHIVE_TYPE)
    response["Content-Length"] = str(archive.size)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


async def _read_async(handle: IO[bytes]) -> AsyncIterator[bytes]:
    try:
        while chunk := await sync_to_async(handle.read, thread_sensitive=False)(CHUNK_SIZE):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()


def _query(serializer_class, request) -> dict:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
