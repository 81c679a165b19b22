"""Everything that changes an operation or a transfer: start, agent reports, archives on disk.

Operations are started by other apps' services (``apps.images.services``)
through ``start_operation``, which is also the only place that queues their
agent task. Agent reports (``record_progress``, ``finish_operation``) are
compare-and-set on ``status``: a finished operation never changes again.

Transfers carry archives between users and agents through files under
``BERTH_TRANSFER_DIR``: bodies are copied in chunks, never held in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from apps.audit import record
from apps.hosts.services import send_to_host
from apps.operations.choices import (
    ACTIVE_STATUSES,
    OWNING_KINDS,
    OperationKind,
    OperationStatus,
    TransferDirection,
)
from apps.operations.events import event_from_operation, send_operation_event
from apps.operations.models import Operation, Transfer
from berth.errors import (
    Conflict,
    Forbidden,
    Gone,
    HostUnavailable,
    InvalidInput,
    NotFound,
    TooLarge,
)

log = logging.getLogger(__name__)

CHUNK_SIZE = 1024 * 1024
TRANSFER_SCHEME = "transfer"


# ---- start --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A body to copy to disk: ``read(n)`` returns up to n bytes and b"" at the end.

    ``length`` is the declared size (Content-Length) when known, so an
    oversized body is refused before a single byte is read.
    """

    read: Callable[[int], bytes]
    length: int | None = None
    name: str = ""


@dataclass(frozen=True)
class Staged:
    """An upload copied to a private file, not yet attached to a transfer."""

    path: Path
    size: int


@dataclass(frozen=True)
class TransferRequest:
    token: str
    direction: str
    staged: Staged | None = None


def start_operation(
    kind: str,
    *,
    team,
    host,
    task: str,
    args: Sequence = (),
    user=None,
    target: str = "",
    transfer: TransferRequest | None = None,
) -> Operation:
    """Create the row (``queued``) and its transfer, then queue ``task(operation.id, *args)``.

    The task is sent after commit (``send_to_host``). If the broker cannot
    take it, the operation is marked failed before the error propagates, so
    nobody waits for an agent that was never told.
    """
    operation = None
    try:
        with transaction.atomic():
            operation = open_operation(
                kind, team=team, host=host, user=user, target=target, transfer=transfer
            )
            send_to_host(host, task, [operation.id, *args])
            details = {"kind": kind, "target": target, "host": host.name}
            record(f"operation.{kind}", operation, user=user, details=details)
    except HostUnavailable as exc:
        if operation is not None:
            finish_operation(operation.id, {"ok": False, "error": exc.message, "images": []})
        raise
    return operation


def open_operation(
    kind: str,
    *,
    team,
    host,
    user=None,
    target: str = "",
    transfer: TransferRequest | None = None,
) -> Operation:
    """Create the row (``queued``) and its transfer in one transaction; no task is queued.

    ``start_operation`` queues the task; other callers run the work themselves as an
    RPC (``call_host``) after this commits, such as container copies: the agent
    reaches the transfer during the call, and the caller closes the operation with
    ``finish_operation`` when the answer is in.
    """
    if kind not in OperationKind.values:
        raise InvalidInput(f"unknown operation kind {kind!r}", field="kind")
    with transaction.atomic():
        operation = Operation.objects.create(
            kind=kind,
            team=team,
            host=host,
            user=user if getattr(user, "pk", None) else None,
            target=target,
        )
        if transfer is not None:
            _create_transfer(operation, transfer)
        _announce(operation)
    return operation


# ---- reports from agents ------------------------------------------------------------------


@transaction.atomic
def record_progress(operation_id: str, progress: Any) -> bool:
    """Store the agent's progress while the operation is queued or running; True when applied.

    One conditional UPDATE (``WHERE status IN (queued, running)``) is the
    compare-and-set: progress that arrives after the finish report is dropped.
    """
    if not isinstance(progress, dict):
        raise InvalidInput(f"progress must be an object, got {type(progress).__name__}")
    now = timezone.now()
    updated = Operation.objects.filter(pk=str(operation_id), status__in=ACTIVE_STATUSES).update(
        status=OperationStatus.RUNNING,
        progress=progress,
        started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
    )
    if updated:
        _announce(_fetch(operation_id))
    else:
        log.debug("progress for operation %s ignored (finished or unknown)", operation_id)
    return bool(updated)


@transaction.atomic
def finish_operation(operation_id: str, result: Any) -> bool:
    """Close the operation from the agent's finish report; True when applied.

    Only a queued or running operation can finish (compare-and-set), so a
    repeated report changes nothing. A successful pull, load or import adds
    the reported images to the operation's team; other kinds only refresh
    existing image rows. A malformed report fails the operation rather than
    leaving it running forever.
    """
    operation = Operation.objects.select_related("team", "host").filter(pk=str(operation_id))
    operation = operation.first()
    if operation is None:
        log.warning("finish report for unknown operation %r ignored", operation_id)
        return False
    ok, error, images = _parse_result(result)
    if ok and operation.kind == OperationKind.SAVE and not _archive_delivered(operation):
        ok, error = False, "the agent reported success but delivered no archive"
    now = timezone.now()
    updated = Operation.objects.filter(pk=operation.pk, status__in=ACTIVE_STATUSES).update(
        status=OperationStatus.SUCCEEDED if ok else OperationStatus.FAILED,
        result=result if isinstance(result, dict) else {"ok": False, "error": error},
        error="" if ok else error,
        finished_at=now,
        started_at=Coalesce("started_at", Value(now, output_field=DateTimeField())),
    )
    if not updated:
        log.debug("finish report for operation %s ignored (already finished)", operation.pk)
        return False
    if ok and images:
        _record_images(operation, images)
    _drop_uploads(operation)
    _announce(_fetch(operation.pk))
    return True


def _parse_result(result: Any) -> tuple[bool, str, list]:
    """``(ok, error, images)`` from ``{"ok": bool, "error": str, "images": [...]}``."""
    if not isinstance(result, dict):
        return False, f"malformed result from the agent: {result!r:.200}", []
    ok = result.get("ok")
    if not isinstance(ok, bool):
        return False, f"malformed result from the agent: 'ok' is {ok!r:.50}, not a boolean", []
    images = result.get("images") or []
    if not isinstance(images, list):
        return False, "malformed result from the agent: 'images' is not a list", []
    error = str(result.get("error") or "")
    if not ok and not error:
        error = "the agent reported a failure without a reason"
    return ok, error, images


def _record_images(operation: Operation, images: list) -> None:
    from apps.images.services import record_images

    owning = operation.kind in OWNING_KINDS
    record_images(operation.host, images, team=operation.team if owning else None, create=owning)


def _fetch(operation_id: str) -> Operation:
    return Operation.objects.select_related("team", "host").get(pk=operation_id)


def _announce(operation: Operation) -> None:
    """Broadcast the operation's state to its team once the change is committed."""
    event = event_from_operation(operation)
    team_id = operation.team_id
    transaction.on_commit(lambda: send_operation_event(team_id, event))


# ---- transfers ----------------------------------------------------------------------------


def new_transfer_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def transfer_dir() -> Path:
    directory = Path(settings.BERTH_TRANSFER_DIR)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def transfer_path(transfer: Transfer) -> Path:
    return transfer_dir() / transfer.token_hash


def transfer_endpoint(token: str, base_url: str) -> dict:
    """The ``source``/``target`` argument of the protocol: where and how the agent transfers."""
    path = reverse("transfer", kwargs={"token": token})
    return {"url": f"{base_url.rstrip('/')}{path}", "token": token}


def stage_upload(upload: Upload) -> Staged:
    """Copy ``upload`` to a private file in chunks, refusing more than BERTH_MAX_UPLOAD_BYTES."""
    limit = settings.BERTH_MAX_UPLOAD_BYTES
    if upload.length is not None and upload.length > limit:
        raise TooLarge(f"the body is {upload.length} bytes; the limit is {limit} bytes")
    fd, name = tempfile.mkstemp(prefix="incoming-", suffix=".part", dir=transfer_dir())
    path, size = Path(name), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := upload.read(CHUNK_SIZE):
                size += len(chunk)
                if size > limit:
                    raise TooLarge(f"the body is larger than the limit of {limit} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise InvalidInput("the body is empty: send the archive as the request body")
    return Staged(path=path, size=size)


def discard(staged: Staged | None) -> None:
    if staged is not None:
        staged.path.unlink(missing_ok=True)


def _create_transfer(operation: Operation, request: TransferRequest) -> Transfer:
    if request.direction not in TransferDirection.values:
        raise InvalidInput(f"unknown transfer direction {request.direction!r}")
    staged = request.staged
    transfer = Transfer.objects.create(
        operation=operation,
        direction=request.direction,
        token_hash=hash_token(request.token),
        size=staged.size if staged else 0,
        completed_at=timezone.now() if staged else None,
    )
    if staged is not None:
        os.replace(staged.path, transfer_path(transfer))
    return transfer


def authorize_transfer(token: str, authorization: str, *, write: bool) -> Transfer:
    """The transfer an agent may read (GET) or write (PUT) with ``Authorization: Transfer <token>``.

    The header must carry the URL's own token (403 otherwise, before any
    lookup, so a caller without it learns nothing); the token must name a
    transfer (404) of an operation that is still queued or running (403).
    """
    scheme, _, given = (authorization or "").strip().partition(" ")
    if (
        scheme.lower() != TRANSFER_SCHEME
        or not given.strip()
        or not hmac.compare_digest(given.strip().encode(), token.encode())
    ):
        raise Forbidden(
            "send 'Authorization: Transfer <token>' with this transfer's token",
            code="transfer_denied",
        )
    transfer = Transfer.objects.select_related("operation").filter(token_hash=hash_token(token))
    transfer = transfer.first()
    if transfer is None:
        raise NotFound("unknown transfer")
    operation = transfer.operation
    if operation.status not in ACTIVE_STATUSES:
        raise Forbidden(
            f"transfer closed: operation {operation.id} is {operation.status}",
            code="transfer_closed",
        )
    wanted = TransferDirection.FROM_AGENT if write else TransferDirection.TO_AGENT
    if transfer.direction != wanted:
        verb = "read (GET)" if write else "written (PUT)"
        raise Forbidden(f"this transfer can only be {verb}", code="transfer_denied")
    if not write and (transfer.removed_at or not transfer_path(transfer).is_file()):
        raise NotFound("the archive of this transfer is gone")
    return transfer


def receive_transfer(transfer: Transfer, upload: Upload) -> Transfer:
    """Store the archive an agent PUTs; replaces an earlier attempt of the same transfer."""
    staged = stage_upload(upload)
    destination = transfer_path(transfer)
    os.replace(staged.path, destination)
    now = timezone.now()
    still_open = Transfer.objects.filter(
        pk=transfer.pk, operation__status__in=ACTIVE_STATUSES, removed_at__isnull=True
    )
    if not still_open.update(size=staged.size, completed_at=now):
        destination.unlink(missing_ok=True)
        raise Forbidden("transfer closed while the archive was arriving", code="transfer_closed")
    transfer.size, transfer.completed_at = staged.size, now
    return transfer


def archive_of(operation: Operation) -> tuple[Path, int]:
    """The saved archive of a finished ``save`` operation, for the user to download."""
    if operation.kind != OperationKind.SAVE:
        raise NotFound(f"operation {operation.id} is a {operation.kind}; only saves have archives")
    if operation.status in ACTIVE_STATUSES:
        raise Conflict(f"operation {operation.id} is still {operation.status}; try again later")
    if operation.status == OperationStatus.FAILED:
        raise Conflict(f"operation {operation.id} failed: {operation.error}")
    transfer = operation.transfers.filter(direction=TransferDirection.FROM_AGENT).first()
    if transfer is None or transfer.completed_at is None:
        raise Conflict(f"operation {operation.id} delivered no archive")
    path = transfer_path(transfer)
    if transfer.removed_at or not path.is_file():
        hours = settings.BERTH_TRANSFER_TTL / 3600
        raise Gone(f"the archive was removed ({hours:g} hours after the save); save again")
    return path, transfer.size


def _archive_delivered(operation: Operation) -> bool:
    return operation.transfers.filter(
        direction=TransferDirection.FROM_AGENT,
        completed_at__isnull=False,
        removed_at__isnull=True,
    ).exists()


def _drop_uploads(operation: Operation) -> None:
    """Delete the archives users uploaded for it once the operation is over (after commit)."""
    uploads = list(
        operation.transfers.filter(direction=TransferDirection.TO_AGENT, removed_at__isnull=True)
    )
    if not uploads:
        return
    Transfer.objects.filter(pk__in=[row.pk for row in uploads]).update(removed_at=timezone.now())

    def remove() -> None:
        for transfer in uploads:
            transfer_path(transfer).unlink(missing_ok=True)

    transaction.on_commit(remove)


def cleanup_transfers(now: datetime | None = None) -> int:
    """Remove archives older than BERTH_TRANSFER_TTL, and stray files; returns files removed."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.BERTH_TRANSFER_TTL)
    expired = list(Transfer.objects.filter(created_at__lt=cutoff, removed_at__isnull=True))
    Transfer.objects.filter(pk__in=[row.pk for row in expired]).update(removed_at=now)
    removed = 0
    for transfer in expired:
        path = transfer_path(transfer)
        if path.exists():
            path.unlink(missing_ok=True)
            removed += 1
    live = set(
        Transfer.objects.filter(removed_at__isnull=True).values_list("token_hash", flat=True)
    )
    for entry in transfer_dir().iterdir():
        if entry.name in live:
            continue
        try:
            stale = entry.is_file() and entry.stat().st_mtime < cutoff.timestamp()
        except FileNotFoundError:  # removed meanwhile
            continue
        if stale:  # leftovers of failed or interrupted requests
            entry.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("removed %d expired transfer file(s)", removed)
    return removed
