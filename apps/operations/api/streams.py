"""Request bodies in and files out, in chunks, under WSGI and ASGI alike.

Archives can be many gigabytes, so nothing here reads a body or a file whole:

- ``upload_from_request`` hands the service a ``read(n)`` over the raw body
  (``application/x-tar``, ``application/octet-stream``, compressed tars) or
  over the multipart field ``file``. DRF's parsers never see a raw body.
- ``file_response`` streams a file. Under ASGI (uvicorn) Django turns a
  synchronous iterator such as ``FileResponse``'s into a list first — the
  whole file in memory — so there the file is read by an async generator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import FileResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from rest_framework import renderers
from rest_framework.exceptions import UnsupportedMediaType

from apps.operations.services import CHUNK_SIZE, Upload
from berth.errors import InvalidInput, TooLarge

RAW_ARCHIVE_TYPES = frozenset(
    {
        "application/x-tar",
        "application/tar",
        "application/octet-stream",
        "application/gzip",
        "application/x-gzip",
        "application/zstd",
        "application/x-xz",
        "application/x-bzip2",
    }
)
MULTIPART = "multipart/form-data"
ARCHIVE_TYPE = "application/x-tar"


class PassthroughRenderer(renderers.BaseRenderer):
    """Lets any Accept header reach views that return files (errors stay JSON)."""

    media_type = "*/*"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


FILE_RENDERERS = [renderers.JSONRenderer, PassthroughRenderer]


def public_base_url(request) -> str:
    """Where agents reach this control plane: BERTH_PUBLIC_URL, else the request's own base."""
    return settings.BERTH_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")


def _django_request(request):
    return getattr(request, "_request", request)


def declared_length(request) -> int | None:
    value = _django_request(request).META.get("CONTENT_LENGTH")
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        raise InvalidInput(f"Content-Length {value!r} is not a number") from None


def media_type(request) -> str:
    return (_django_request(request).content_type or "").split(";")[0].strip().lower()


def upload_from_request(request, *, allow_multipart: bool = True) -> Upload:
    """The body as an ``Upload``: raw, or the multipart field ``file``; 415 for anything else."""
    kind = media_type(request)
    if kind in RAW_ARCHIVE_TYPES:
        raw = _django_request(request)
        return Upload(read=raw.read, length=declared_length(request))
    if allow_multipart and kind == MULTIPART:
        length = declared_length(request)
        limit = settings.BERTH_MAX_UPLOAD_BYTES
        if length is not None and length > limit:
            # Checked before Django parses (and spools) the multipart body.
            raise TooLarge(f"the body is {length} bytes; the limit is {limit} bytes")
        uploaded = request.FILES.get("file")
        if uploaded is None:
            raise InvalidInput("send the archive in the multipart field 'file'", field="file")
        return Upload(read=uploaded.read, length=uploaded.size, name=uploaded.name or "")
    accepted = ", ".join(sorted(RAW_ARCHIVE_TYPES | ({MULTIPART} if allow_multipart else set())))
    raise UnsupportedMediaType(kind or "(none)", detail=f"send the archive as one of: {accepted}")


def file_response(
    request, path: Path, *, size: int, filename: str, content_type: str = ARCHIVE_TYPE
) -> StreamingHttpResponse:
    if isinstance(_django_request(request), ASGIRequest):
        response = StreamingHttpResponse(_read_async(path), content_type=content_type)
        response["Content-Length"] = str(size)
    else:
        response = FileResponse(path.open("rb"), content_type=content_type)
    if filename:
        response["Content-Disposition"] = content_disposition_header(True, filename)
    return response


async def _read_async(path: Path) -> AsyncIterator[bytes]:
    handle = await sync_to_async(path.open, thread_sensitive=False)("rb")
    try:
        while chunk := await sync_to_async(handle.read, thread_sensitive=False)(CHUNK_SIZE):
            yield chunk
    finally:
        await sync_to_async(handle.close, thread_sensitive=False)()
