"""ASGI middleware refusing request bodies over BERTH_MAX_UPLOAD_BYTES before Django reads them.

Django's ASGI handler spools the whole body to a temporary file before any
view runs, so a view cannot refuse an oversized upload in time: the disk
would fill first. This wrapper answers 413 when Content-Length is over the
limit, and stops reading a body sent without a length (chunked) as soon as
it passes the limit.
"""

from __future__ import annotations

import json

from django.conf import settings

from berth.api import error_body


class BodySizeLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = settings.BERTH_MAX_UPLOAD_BYTES
        length = _content_length(scope)
        if length is not None and length > limit:
            return await _too_large(send, f"the body is {length} bytes; the limit is {limit} bytes")
        received = 0
        exceeded = False
        started = False

        async def limited_receive():
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}  # Django drops the request quietly
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, limited_receive, tracking_send)
        if exceeded and not started:
            await _too_large(send, f"the body is larger than the limit of {limit} bytes")


def _content_length(scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send, message: str) -> None:
    body = json.dumps(error_body("too_large", message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
