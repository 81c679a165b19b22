"""A container's files through its agent: copy in and out (``docker cp``), path stat,
export, diff, commit and top.

Archives move through operations with a transfer (``apps.operations``): the
row and its single-use transfer URL are committed first, then the agent is
called (RPC) and reads or delivers the tar through that URL while the caller
waits; its answer closes the operation. A delivered archive is handed to the
caller as an open file whose name is already gone, so nothing is left behind
once it is read. A commit is an operation too, and its new image becomes the
team's like a pull's.

Agent answers are ``{"ok": true, ...}`` or ``{"ok": false, "code", "error"}``
(docs/agent-protocol.md, "Container files"); ``code`` picks the error here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.containers.choices import ON_HOST_STATES, STATS_STATES
from apps.containers.models import Container
from apps.hosts.services import call_host
from apps.images.models import Image
from apps.images.reference import parse_reference
from apps.images.services import _check_unclaimed, parse_image_reference
from apps.operations.choices import OperationKind, TransferDirection
from apps.operations.models import Operation, Transfer
from apps.operations.services import (
    TransferRequest,
    Upload,
    discard,
    finish_operation,
    new_transfer_token,
    open_operation,
    stage_upload,
    transfer_endpoint,
    transfer_path,
)
from apps.teams.services import can_act
from berth.errors import AgentError, Conflict, Forbidden, InvalidInput, NotFound, ServiceError

log = logging.getLogger(__name__)

MAX_PATH = 4096
MAX_PS_ARGS = 200
REFUSALS = {"invalid": InvalidInput, "not_found": NotFound, "conflict": Conflict}
COMMIT_CHANGES = (
    "Cmd",
    "Entrypoint",
    "Env",
    "Labels",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Volumes",
    "StopSignal",
)


@dataclass(frozen=True)
class Archive:
    """A tar the agent delivered: an open file (already unlinked), its size and, for a
    copy out, Docker's stat of the path."""

    handle: IO[bytes]
    size: int
    stat: dict | None = None


# ---- reads --------------------------------------------------------------------------------


def path_stat(user, container: Container, path: Any) -> dict:
    """Docker's stat of ``path`` in the container (``HEAD .../archive``)."""
    _require_files(user, container, "read files of")
    answer = _call(
        container,
        "agent.container_path_stat",
        [container.id, _path(path)],
        settings.BERTH_CONTAINER_RPC_TIMEOUT,
    )
    return _stat_of(container, answer)


def container_changes(container: Container) -> list[dict]:
    """``[{"Path", "Kind"}]``: what the container changed against its image."""
    _require_state(container, ON_HOST_STATES, "diff")
    answer = _call(
        container, "agent.container_changes", [container.id], settings.BERTH_CONTAINER_RPC_TIMEOUT
    )
    found = answer.get("changes")
    if not isinstance(found, list):
        raise AgentError(f"host {container.host.name} answered a diff without changes")
    return found


def container_top(container: Container, ps_args: Any = "") -> dict:
    """``{"Titles", "Processes"}`` of the running container (``docker top``)."""
    if ps_args is None:
        ps_args = ""
    if not isinstance(ps_args, str) or len(ps_args) > MAX_PS_ARGS or "\0" in ps_args:
        raise InvalidInput("'ps_args' must be a short string such as \"aux\"", field="ps_args")
    _require_state(container, STATS_STATES, "list processes of")
    answer = _call(
        container,
        "agent.container_top",
        [container.id, ps_args],
        settings.BERTH_CONTAINER_RPC_TIMEOUT,
    )
    top = answer.get("top")
    if not isinstance(top, dict):
        raise AgentError(f"host {container.host.name} answered top without processes")
    return top


# ---- archives -----------------------------------------------------------------------------


def copy_from(user, container: Container, path: Any, *, base_url: str) -> Archive:
    """``path`` (a file or a directory tree) as a tar, with Docker's stat of it."""
    _require_files(user, container, "copy files from")
    path = _path(path)
    operation, answer = _with_transfer(
        OperationKind.COPY_OUT,
        user,
        container,
        f"{container.id}:{path}",
        TransferRequest(new_transfer_token(), TransferDirection.FROM_AGENT),
        lambda endpoint: [container.id, path, endpoint],
        "agent.container_archive_get",
        base_url,
    )
    return _delivered(operation, _stat_of(container, answer))


def export_container(user, container: Container, *, base_url: str) -> Archive:
    """The container's flattened filesystem as a tar (``docker export``)."""
    _require_files(user, container, "export")
    operation, _ = _with_transfer(
        OperationKind.EXPORT,
        user,
        container,
        container.id,
        TransferRequest(new_transfer_token(), TransferDirection.FROM_AGENT),
        lambda endpoint: [container.id, endpoint],
        "agent.container_export",
        base_url,
    )
    return _delivered(operation, None)


def copy_to(
    user,
    container: Container,
    path: Any,
    upload: Upload,
    *,
    base_url: str,
    no_overwrite_dir_non_dir: bool = False,
) -> None:
    """Extract the uploaded tar into the directory ``path`` of the container."""
    _require_files(user, container, "copy files into")
    path = _path(path)
    staged = stage_upload(upload)
    try:
        _with_transfer(
            OperationKind.COPY_IN,
            user,
            container,
            f"{container.id}:{path}",
            TransferRequest(new_transfer_token(), TransferDirection.TO_AGENT, staged),
            lambda endpoint: [container.id, path, endpoint, bool(no_overwrite_dir_non_dir)],
            "agent.container_archive_put",
            base_url,
        )
    finally:
        discard(staged)  # moved into place when the operation was opened


def _with_transfer(kind, user, container, target, request, args, task, base_url):
    """Open the operation with its transfer, call the agent, close it with the answer."""
    operation = open_operation(
        kind,
        team=container.team,
        host=container.host,
        user=user,
        target=target,
        transfer=request,
    )
    endpoint = transfer_endpoint(request.token, base_url)
    try:
        answer = _raw_call(container, task, args(endpoint), settings.BERTH_COPY_TIMEOUT)
    except ServiceError as exc:
        finish_operation(operation.id, {"ok": False, "error": exc.message, "images": []})
        raise
    delivers = request.direction == TransferDirection.FROM_AGENT
    if answer.get("ok") and delivers and not _transfer_of(operation).completed_at:
        answer = {"ok": False, "code": "error", "error": "the agent delivered no archive"}
    finish_operation(
        operation.id,
        {
            "ok": bool(answer.get("ok")),
            "error": str(answer.get("error") or ""),
            "images": answer.get("images") or [],
        },
    )
    _raise_refusal(container, answer)
    return operation, answer


def _transfer_of(operation: Operation) -> Transfer:
    return operation.transfers.get()


def _delivered(operation: Operation, stat: dict | None) -> Archive:
    """Open the delivered archive and remove its name: the open file is all that is left."""
    transfer = _transfer_of(operation)
    path = transfer_path(transfer)
    handle = path.open("rb")
    path.unlink(missing_ok=True)
    Transfer.objects.filter(pk=transfer.pk).update(removed_at=timezone.now())
    return Archive(handle=handle, size=transfer.size, stat=stat)


# ---- commit -------------------------------------------------------------------------------


def commit_container(user, container: Container, data: Any) -> Image:
    """A new image from the container's writable layer, the team's own (``docker commit``).

    ``data``: ``reference`` (else untagged), ``changes`` (image config keys such as
    ``Cmd``, ``Env``, ``Labels``), ``author``, ``comment`` and ``pause`` (default true:
    a running container is frozen while its layer is read).
    """
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    _require_acting(user, container, "commit")
    _require_state(container, ON_HOST_STATES, "commit")
    reference = _commit_reference(user, container, data.get("reference"))
    changes = _commit_changes(data.get("changes"))
    author = _short_text(data, "author", 500)
    comment = _short_text(data, "comment", 5000)
    pause = data.get("pause", True)
    if not isinstance(pause, bool):
        raise InvalidInput("'pause' must be true or false", field="pause")
    operation = open_operation(
        OperationKind.COMMIT,
        team=container.team,
        host=container.host,
        user=user,
        target=reference or container.id,
    )
    try:
        answer = _raw_call(
            container,
            "agent.container_commit",
            [container.id, reference, changes, author, comment, pause],
            settings.BERTH_COPY_TIMEOUT,
        )
    except ServiceError as exc:
        finish_operation(operation.id, {"ok": False, "error": exc.message, "images": []})
        raise
    images = answer.get("images") if answer.get("ok") else []
    finish_operation(
        operation.id,
        {"ok": bool(answer.get("ok")), "error": str(answer.get("error") or ""), "images": images},
    )
    _raise_refusal(container, answer)
    return _committed_image(container, answer)


def _commit_reference(user, container: Container, value: Any) -> str:
    if value in (None, ""):
        return ""
    reference = parse_image_reference(value)
    if parse_reference(reference).digest:
        raise InvalidInput("commit needs a tag, not a digest", field="reference")
    _check_unclaimed(container.host, reference, container.team, user)
    return reference


def _commit_changes(value: Any) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("'changes' must be an object of image config keys", field="changes")
    unknown = sorted(set(value) - set(COMMIT_CHANGES))
    if unknown:
        raise InvalidInput(
            f"unsupported changes {', '.join(unknown)}; use {', '.join(COMMIT_CHANGES)}",
            field="changes",
        )
    return {key: _commit_change(key, item) for key, item in value.items()}


def _commit_change(key: str, value: Any):
    """One change, checked and in the engine's shape (Docker's StrSlice: a string is a
    one-item list; a set of ports or volumes may come as a list of names)."""
    field = f"changes.{key}"
    if value is None:
        return None
    if key in ("Cmd", "Entrypoint"):
        value = [value] if isinstance(value, str) else value
        if not _strings(value):
            raise InvalidInput(f"{key} must be a string or a list of strings", field=field)
    elif key == "Env":
        if not _strings(value) or any(not item.partition("=")[0] or "=" not in item
                                      for item in value):
            raise InvalidInput("Env must be a list of KEY=value strings", field=field)
    elif key == "Labels":
        if not isinstance(value, dict) or not _strings(list(value.values())):
            raise InvalidInput("Labels must map names to strings", field=field)
    elif key in ("ExposedPorts", "Volumes"):
        names = list(value) if isinstance(value, dict) else value
        empty = not isinstance(value, dict) or all(item in (None, {}) for item in value.values())
        if not _strings(names) or not empty:
            raise InvalidInput(f"{key} must be a list of names or an object of them to {{}}",
                               field=field)
        value = {name: {} for name in names}
    elif not isinstance(value, str):  # WorkingDir, User, StopSignal
        raise InvalidInput(f"{key} must be a string", field=field)
    return value


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _committed_image(container: Container, answer: dict) -> Image:
    reports = answer.get("images") or []
    report = reports[0] if reports and isinstance(reports[0], dict) else {}
    row = (
        Image.objects.select_related("host", "team")
        .filter(Q(team=container.team) | Q(team__isnull=True))
        .filter(host=container.host, reference=report.get("reference"))
        .order_by("team")  # the team's own row before a system one
        .first()
    )
    if row is None:
        raise AgentError(f"host {container.host.name} answered a commit without its image")
    return row


# ---- shared -------------------------------------------------------------------------------


def _call(container: Container, task: str, args: list, timeout: float) -> dict:
    answer = _raw_call(container, task, args, timeout)
    _raise_refusal(container, answer)
    return answer


def _raw_call(container: Container, task: str, args: list, timeout: float) -> dict:
    answer = call_host(container.host, task, args, timeout)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise AgentError(f"host {container.host.name} answered {task} with no result")
    return answer


def _raise_refusal(container: Container, answer: dict) -> None:
    if answer.get("ok"):
        return
    error = str(answer.get("error") or "the agent refused without a reason")
    refusal = REFUSALS.get(answer.get("code"))
    if refusal is None:
        raise AgentError(f"host {container.host.name}: {error}")
    raise refusal(error)


def _stat_of(container: Container, answer: dict) -> dict:
    stat = answer.get("stat")
    if not isinstance(stat, dict):
        raise AgentError(f"host {container.host.name} answered without the path's stat")
    return stat


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'path' is required: a path in the container", field="path")
    if len(value) > MAX_PATH or "\0" in value:
        raise InvalidInput("'path' is too long or contains a NUL byte", field="path")
    return value if value.startswith("/") else f"/{value}"


def _short_text(data: dict, field: str, limit: int) -> str:
    value = data.get(field) or ""
    if not isinstance(value, str) or len(value) > limit or "\0" in value:
        raise InvalidInput(f"'{field}' must be text of at most {limit} characters", field=field)
    return value


def _require_files(user, container: Container, verb: str) -> None:
    """Files may hold secrets: reading them, like changing them, is for operators."""
    _require_acting(user, container, verb)
    _require_state(container, ON_HOST_STATES, verb)


def _require_acting(user, container: Container, verb: str) -> None:
    if not can_act(user, container.team):
        raise Forbidden(
            f"only operators and owners of team {container.team.slug} may {verb} containers"
        )


def _require_state(container: Container, states, verb: str) -> None:
    if container.state not in states:
        raise Conflict(f"cannot {verb} container {container.name}: it is {container.state}")
