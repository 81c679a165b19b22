"""Following an Operation (pull, push, load, import, save) from the Docker API.

Until the agent reports progress nothing is sent, so an early failure (no
such repository) is still an HTTP error the CLI shows as dockerd's; after
the head went out, a failure is an in-band ``errorDetail`` line.
"""

from __future__ import annotations

import asyncio
import json
from typing import Protocol

from apps.dockerapi.errors import DockerError
from apps.dockerapi.router import Context, call
from apps.operations.choices import ACTIVE_STATUSES, OperationStatus
from apps.operations.models import Operation
from apps.operations.services import Upload

POLL = 0.025  # seconds between reads of the row: one indexed SELECT


class Progress(Protocol):
    def first(self) -> list[dict]: ...
    def progress(self, progress: dict) -> list[dict]: ...
    def success(self, result: dict) -> list[dict]: ...
    def failure_status(self, error: str) -> tuple[int, str]: ...


def operation_row(operation_id: str) -> Operation:
    return Operation.objects.get(pk=operation_id)


async def wait_finished(operation_id: str) -> Operation:
    while True:
        row = await call(operation_row, operation_id)
        if row.status not in ACTIVE_STATUSES:
            return row
        await asyncio.sleep(POLL)


def _line(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode() + b"\r\n"


async def follow_operation(ctx: Context, operation_id: str, render: Progress) -> None:
    row = await call(operation_row, operation_id)
    while row.status == OperationStatus.QUEUED:
        await asyncio.sleep(POLL)
        row = await call(operation_row, operation_id)
    if row.status == OperationStatus.FAILED:
        status, message = render.failure_status(row.error)
        raise DockerError(status, message)
    writer = await ctx.stream()
    for line in render.first():
        await writer.write(_line(line))
    last_progress = None
    while True:
        if row.progress != last_progress:
            last_progress = row.progress
            for line in render.progress(row.progress or {}):
                await writer.write(_line(line))
        if row.status not in ACTIVE_STATUSES:
            break
        await asyncio.sleep(POLL)
        row = await call(operation_row, operation_id)
    if row.status == OperationStatus.SUCCEEDED:
        for line in render.success(row.result or {}):
            await writer.write(_line(line))
    else:
        error = row.error or "the operation failed"
        await writer.write(_line({"errorDetail": {"message": error}, "error": error}))
    await writer.close()


def upload_from_body(ctx: Context) -> Upload:
    """The request body as the services' synchronous ``read(n)`` (called from a worker thread)."""
    loop = asyncio.get_running_loop()
    body = ctx.request.body

    def read(size: int) -> bytes:
        return asyncio.run_coroutine_threadsafe(body.read(size), loop).result()

    return Upload(read=read, length=body.declared_length, name="docker-api")
