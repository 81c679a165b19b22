"""Everything that changes images and registries.

- The Image table mirrors what each host reports (``sync_host_images``,
  ``record_images``), with team ownership decided here.
- Registries hold a team's credentials (encrypted) and build the
  ``registries`` argument of the agent protocol (``registries_for``).
- Image work: long jobs become operations (pull, push, load, import, save via
  ``apps.operations.services.start_operation``); quick ones are RPCs
  (tag, remove, inspect, prune via ``apps.hosts.services.call_host``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.containers.choices import ACTIVE_STATES
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.hosts.services import call_host
from apps.images.models import Image, Registry
from apps.images.reference import normalize_reference, parse_reference
from apps.operations.choices import OperationKind, TransferDirection
from apps.operations.models import Operation
from apps.operations.services import (
    TransferRequest,
    Upload,
    discard,
    new_transfer_token,
    stage_upload,
    start_operation,
    transfer_endpoint,
)
from apps.teams import policy as team_policy
from apps.teams.services import is_site_admin, resolve_team_for_create
from berth.crypto import DecryptionError, decrypt_text, encrypt_text
from berth.errors import AgentError, Conflict, Forbidden, InvalidInput
from berth.timestamps import parse_iso

log = logging.getLogger(__name__)

SAVE_FORMATS = ("docker", "oci")
MAX_SAVE_REFERENCES = 100
MAX_MIRRORS = 10
MAX_LIST_ITEMS = 1000
DOCKER_HUB = "docker.io"
DOCKER_HUB_ALIASES = frozenset(
    {"index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)
REGISTRY_PATHS = frozenset({"", "/", "/v1", "/v1/", "/v2", "/v2/"})
# Agents name an image without a tag (e.g. loaded from an untagged archive) by its id.
DANGLING_REFERENCE = re.compile(r"sha256:[0-9a-f]{64}")


# ---- the Image table as hosts report it ---------------------------------------------------


@transaction.atomic
def sync_host_images(host, images: list[dict], *, add_unknown: bool = True) -> list[Image]:
    """Refresh the rows of the reported images and drop rows the host no longer reports.

    ``add_unknown`` (registration) adds a reference no row knows as a shared
    system image. The ``images.sync`` report passes False: a reference that
    appears between registrations came from an operation or a tag, whose
    handler adds it for the right team; adding it here first would show one
    team's image to every team.

    Rows still referenced by a container are kept (the FK protects them):
    the container's history must stay readable even if the image was pruned.
    Malformed entries are skipped with a warning instead of failing the whole
    report, so one odd image cannot keep a host from coming online.
    """
    if not isinstance(images, list):
        raise InvalidInput("'images' must be a list")
    kept: list[Image] = []
    for entry in images:
        fields = _fields_or_none(host, entry)
        if fields is not None:
            kept.extend(_refresh(host, fields, team=None, add=add_unknown))
    stale = Image.objects.filter(host=host).exclude(pk__in=[row.pk for row in kept])
    stale.filter(containers__isnull=True).delete()
    return kept


@transaction.atomic
def record_images(host, images: list, *, team=None, create: bool = False) -> list[Image]:
    """Refresh rows of the reported images; with ``create``, add those ``team`` cannot see yet.

    A new row belongs to ``team`` (None: a system row). Nothing is deleted:
    an operation's report lists only the images it touched.
    """
    if not isinstance(images, list):
        raise InvalidInput("'images' must be a list")
    rows: list[Image] = []
    for entry in images:
        fields = _fields_or_none(host, entry)
        if fields is not None:
            rows.extend(_refresh(host, fields, team=team, add=create))
    return rows


def sync_reported_images(host_name: str, images: Any) -> list[Image]:
    """The ``images.sync`` report: the host's full image list after a change."""
    host = Host.objects.filter(name=host_name).first() if isinstance(host_name, str) else None
    if host is None:
        log.warning("image list from unregistered host %r ignored", host_name)
        return []
    return sync_host_images(host, images, add_unknown=False)


def _fields_or_none(host, entry: Any) -> dict[str, Any] | None:
    try:
        return _image_fields(entry)
    except (ValueError, TypeError) as exc:
        log.warning("host %s reported an unusable image %r: %s", host.name, entry, exc)
        return None


def _refresh(host, fields: dict[str, Any], *, team, add: bool) -> list[Image]:
    """Update every row of (host, reference); add one for ``team`` when asked and missing.

    For a system row (``team`` None) "missing" means no row at all: another
    team's private row must not gain a shared twin. For a team, a system row
    or its own row already gives it the image.
    """
    fields = dict(fields)
    reference = fields.pop("reference")
    rows = Image.objects.filter(host=host, reference=reference)
    rows.update(**fields, updated=timezone.now())
    existing = list(rows)
    if team is None:
        # An untagged image found at registration is nobody's to share.
        missing = not existing and not DANGLING_REFERENCE.fullmatch(reference)
    else:
        missing = not any(row.team_id in (None, team.pk) for row in existing)
    if add and missing:
        try:
            with transaction.atomic():
                existing.append(
                    Image.objects.create(host=host, reference=reference, team=team, **fields)
                )
        except IntegrityError:  # a concurrent report added it first
            existing = list(rows)
    return existing


def _image_fields(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise TypeError("image entry must be an object")
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise TypeError("'config' must be an object")
    size = int(entry.get("size") or 0)
    if size < 0:
        raise ValueError("'size' must not be negative")
    repo_digests = entry.get("repo_digests") or []
    if not isinstance(repo_digests, list) or not all(isinstance(d, str) for d in repo_digests):
        raise TypeError("'repo_digests' must be a list of strings")
    history = entry.get("history") or []
    if not isinstance(history, list):
        raise TypeError("'history' must be a list")
    reference = entry.get("reference", "")
    if not (isinstance(reference, str) and DANGLING_REFERENCE.fullmatch(reference)):
        reference = normalize_reference(reference)
    return {
        "reference": reference,
        "digest": str(entry.get("digest") or "")[:100],
        "image_id": str(entry.get("image_id") or "")[:100],
        "size": size,
        "created": parse_iso(entry.get("created")),
        "config": config,
        "repo_digests": repo_digests[:MAX_LIST_ITEMS],
        "history": history[:MAX_LIST_ITEMS],
    }


def images_usable_by(team) -> QuerySet[Image]:
    """System images plus the team's own."""
    return Image.objects.filter(Q(team__isnull=True) | Q(team=team))


def find_image(reference: str, team, host=None) -> Image | None:
    """The best row for ``reference`` the team may use, on ``host`` if given."""
    rows = images_usable_by(team).filter(reference=reference).select_related("host")
    if host is not None:
        rows = rows.filter(host=host)
    return rows.first()


# ---- registries ---------------------------------------------------------------------------


def create_registry(user, data: dict) -> Registry:
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    registry = Registry(team=team)
    _apply_registry_changes(registry, data, creating=True)
    return _save_registry(registry)


def update_registry(registry: Registry, data: dict) -> Registry:
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    if "team" in data and data["team"] not in (None, "", registry.team.slug):
        raise InvalidInput("a registry cannot move to another team", field="team")
    _apply_registry_changes(registry, data, creating=False)
    return _save_registry(registry)


def delete_registry(registry: Registry) -> None:
    registry.delete()


def _apply_registry_changes(registry: Registry, data: dict, *, creating: bool) -> None:
    """Validate and set each given field; on create ``name`` and ``url`` are required."""
    if creating or "name" in data:
        registry.name = _registry_name(data.get("name"))
    if creating or "url" in data:
        registry.url, registry.host = parse_registry_url(data.get("url"))
    if "username" in data:
        registry.username = _short_text(data.get("username"), "username", 200)
    if "password" in data and data["password"] is not None:
        password = _short_text(data["password"], "password", 1000)
        registry.password_encrypted = encrypt_text(password) if password else ""
    if "mirrors" in data:
        registry.mirrors = _mirrors(data.get("mirrors"))
    plain_http = registry.url.startswith("http://")
    if "insecure" in data:
        insecure = data["insecure"]
        if not isinstance(insecure, bool):
            raise InvalidInput("'insecure' must be true or false", field="insecure")
        if plain_http and not insecure:
            raise InvalidInput(
                "an http:// registry is insecure by definition; use https:// or insecure=true",
                field="insecure",
            )
        registry.insecure = insecure
    elif plain_http:
        registry.insecure = True


def _save_registry(registry: Registry) -> Registry:
    clash = Registry.objects.filter(team=registry.team).exclude(pk=registry.pk)
    if clash.filter(name=registry.name).exists():
        raise InvalidInput(
            f"team {registry.team.slug} already has a registry named {registry.name!r}",
            field="name",
        )
    if clash.filter(host=registry.host).exists():
        raise InvalidInput(
            f"team {registry.team.slug} already has a registry for {registry.host}", field="url"
        )
    try:
        with transaction.atomic():
            registry.save()
    except IntegrityError:
        raise InvalidInput(
            "a registry with this name or host was just added", field="name"
        ) from None
    return registry


def _registry_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("'name' is required", field="name")
    return _short_text(value.strip(), "name", 100)


def _short_text(value: Any, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"'{field}' must be a string", field=field)
    if len(value) > limit:
        raise InvalidInput(f"'{field}' is longer than {limit} characters", field=field)
    if "\0" in value:
        raise InvalidInput(f"'{field}' contains a NUL byte", field=field)
    return value


def parse_registry_url(value: Any, field: str = "url") -> tuple[str, str]:
    """``("https://registry.example:5000", "registry.example:5000")`` from what a user typed.

    A bare ``host[:port]`` means https. The host must be one an image
    reference can name (a dot, a port or ``localhost``), because agents find
    credentials by a reference's registry part; Docker Hub aliases become
    ``docker.io``.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(
            f"'{field}' is required, e.g. \"https://registry.example:5000\"", field=field
        )
    text = value.strip()
    if "://" not in text:
        text = f"https://{text}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput(f"invalid URL {value!r}: {exc}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput(f"{value!r}: the scheme must be http or https", field=field)
    if not parts.hostname:
        raise InvalidInput(f"{value!r} names no host", field=field)
    if parts.username or parts.password:
        raise InvalidInput(
            f"{value!r}: put credentials in 'username' and 'password', not in the URL", field=field
        )
    if parts.query or parts.fragment or parts.path not in REGISTRY_PATHS:
        raise InvalidInput(f"{value!r}: give the registry's address without a path", field=field)
    hostname = parts.hostname.lower()
    if ":" in hostname:
        raise InvalidInput(f"{value!r}: IPv6 registry addresses are not supported", field=field)
    host = hostname if port is None else f"{hostname}:{port}"
    if hostname in DOCKER_HUB_ALIASES or host == DOCKER_HUB:
        host = DOCKER_HUB
    elif _registry_of(f"{host}/probe") != host:
        raise InvalidInput(
            f"image references cannot name registry {host!r}: use a name with a dot, "
            "a port, or localhost",
            field=field,
        )
    netloc = hostname if port is None else f"{hostname}:{port}"
    return f"{parts.scheme}://{netloc}", host


def _registry_of(reference: str) -> str | None:
    try:
        return parse_reference(reference).domain
    except ValueError:
        return None


def _mirrors(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput("'mirrors' must be a list of URLs", field="mirrors")
    if len(value) > MAX_MIRRORS:
        raise InvalidInput(f"at most {MAX_MIRRORS} mirrors", field="mirrors")
    return [parse_registry_url(item, field="mirrors")[0] for item in value]


def registries_for(team, hosts: Iterable[str] | None = None) -> dict[str, dict]:
    """The protocol's ``registries``: registry host → credentials, insecure flag and mirrors.

    Limited to ``hosts`` when given, so an agent only receives the secrets the
    task needs. A password that cannot be decrypted (SECRET_KEY changed) is a
    409 naming the registry rather than an anonymous attempt that fails later.
    """
    rows = Registry.objects.filter(team=team)
    if hosts is not None:
        rows = rows.filter(host__in=list(hosts))
    result = {}
    for registry in rows:
        try:
            password = decrypt_text(registry.password_encrypted) if registry.has_password else ""
        except DecryptionError:
            raise Conflict(
                f"the password of registry {registry.name!r} cannot be decrypted "
                "(was SECRET_KEY changed?); set it again"
            ) from None
        result[registry.host] = {
            "username": registry.username,
            "password": password,
            "insecure": registry.insecure,
            "mirrors": list(registry.mirrors),
        }
    return result


def registries_for_reference(team, reference: str) -> dict[str, dict]:
    """The team's registry entry for ``reference``'s registry, plus those of its mirrors."""
    domain = parse_reference(reference).domain
    wanted = {domain}
    registry = Registry.objects.filter(team=team, host=domain).first()
    for mirror in registry.mirrors if registry else []:
        wanted.add(parse_registry_url(mirror)[1])
    return registries_for(team, wanted)


# ---- image operations ---------------------------------------------------------------------


def pull_image(user, data: dict) -> Operation:
    """Start pulling ``data["reference"]`` on ``data["host"]`` (else an online host);
    with ``data["all_tags"]``, every tag of its repository (``docker pull -a``)."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    reference = parse_image_reference(data.get("reference"))
    host = pick_host(data.get("host") or None, team)
    registries = registries_for_reference(team, reference)
    if data.get("all_tags"):
        target = parse_reference(reference).name
        task, args = "agent.image_pull_tags", [target, registries,
                                               _protected_tags(user, team, host, target)]
    else:
        _check_unclaimed(host, reference, team, user)
        target, task, args = reference, "agent.image_pull", [reference, registries]
    return start_operation(
        OperationKind.PULL, team=team, host=host, user=user, target=target, task=task, args=args
    )


def _protected_tags(user, team, host, repository: str) -> list[str]:
    """The repository's tags other owners hold on this host: ``pull -a`` leaves them be."""
    if is_site_admin(user):
        return []
    others = Image.objects.filter(host=host, reference__startswith=f"{repository}:")
    return sorted(others.exclude(team=team).values_list("reference", flat=True))


def push_image(user, image: Image, data: dict) -> Operation:
    """Start pushing the image; with ``data["reference"]`` it is tagged so first."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = acting_team(user, image, data.get("team") or None)
    pick_host(image.host.name)
    target = image.reference
    if data.get("reference"):
        target = parse_image_reference(data["reference"])
        if target != image.reference:
            tag_image(user, image, {"reference": target, "team": team.slug})
    if parse_reference(target).digest:
        raise InvalidInput(
            f"cannot push {target}: it names a digest; pass a tagged 'reference' to push as",
            field="reference",
        )
    return start_operation(
        OperationKind.PUSH,
        team=team,
        host=image.host,
        user=user,
        target=target,
        task="agent.image_push",
        args=[target, registries_for_reference(team, target)],
    )


def load_image(user, upload: Upload, *, host_name=None, team_slug=None, base_url: str) -> Operation:
    """Store an uploaded ``docker save``/OCI archive and have the agent load it."""
    team = resolve_team_for_create(user, team_slug or None)
    host = pick_host(host_name or None, team)
    # The archive's tags are known only on the host: name the references there that
    # belong to others, and the agent refuses to re-point them.
    protected = [] if is_site_admin(user) else _references_of_others(host, team)
    return _start_with_upload(
        OperationKind.LOAD, user, team, host, upload, base_url, "agent.image_load", [protected],
        upload.name,
    )


def _references_of_others(host, team) -> list[str]:
    rows = Image.objects.filter(host=host).exclude(team=team)
    return sorted(set(rows.values_list("reference", flat=True)))


def import_image(
    user, upload: Upload, *, reference: Any, host_name=None, team_slug=None, base_url: str,
    changes: dict | None = None,
) -> Operation:
    """Store an uploaded root filesystem tar and have the agent import it as ``reference``,
    with ``changes`` to its config (``apps.images.instructions``: Cmd, Env, …)."""
    team = resolve_team_for_create(user, team_slug or None)
    target = parse_image_reference(reference)
    if parse_reference(target).digest:
        raise InvalidInput("import needs a tag, not a digest", field="reference")
    host = pick_host(host_name or None, team)
    _check_unclaimed(host, target, team, user)
    args = [target, changes or {}]
    return _start_with_upload(
        OperationKind.IMPORT, user, team, host, upload, base_url, "agent.image_import", args, target
    )


def _start_with_upload(kind, user, team, host, upload, base_url, task, extra_args, target):
    """Copy the body to disk (after the cheap checks), then create the operation and transfer."""
    staged = stage_upload(upload)
    token = new_transfer_token()
    try:
        return start_operation(
            kind,
            team=team,
            host=host,
            user=user,
            target=target,
            task=task,
            args=[transfer_endpoint(token, base_url), *extra_args],
            transfer=TransferRequest(token, TransferDirection.TO_AGENT, staged),
        )
    finally:
        discard(staged)  # moved into place on success; a leftover on failure


def save_images(user, data: dict, *, base_url: str) -> Operation:
    """Have the agent write the images into one archive that the user then downloads."""
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = resolve_team_for_create(user, data.get("team") or None)
    references = _save_references(data.get("references"))
    fmt = data.get("format") or "docker"
    if fmt not in SAVE_FORMATS:
        raise InvalidInput(f"'format' must be one of {', '.join(SAVE_FORMATS)}", field="format")
    host = _host_with_images(team, references, data.get("host") or None)
    token = new_transfer_token()
    return start_operation(
        OperationKind.SAVE,
        team=team,
        host=host,
        user=user,
        target=" ".join(references),
        task="agent.image_save",
        args=[references, transfer_endpoint(token, base_url), fmt],
        transfer=TransferRequest(token, TransferDirection.FROM_AGENT),
    )


def _save_references(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidInput(
            "'references' must be a non-empty list of image references", field="references"
        )
    if len(value) > MAX_SAVE_REFERENCES:
        raise InvalidInput(f"at most {MAX_SAVE_REFERENCES} references", field="references")
    result: list[str] = []
    for item in value:
        reference = parse_image_reference(item, field="references")
        if reference not in result:
            result.append(reference)
    return result


def _host_with_images(team, references: list[str], host_name: Any) -> Host:
    """The named host (which must have every reference), else an online host that has them all."""
    usable = images_usable_by(team).filter(reference__in=references)
    if host_name is not None:
        host = pick_host(host_name)
        present = set(usable.filter(host=host).values_list("reference", flat=True))
        missing = [reference for reference in references if reference not in present]
        if missing:
            raise InvalidInput(
                f"unknown image {', '.join(missing)} on host {host.name}", field="references"
            )
        return host
    complete = (
        Host.objects.filter(status=HostStatus.ONLINE, images__in=usable)
        .annotate(found=Count("images__reference", distinct=True))
        .filter(found=len(references))
        .order_by("name")
    )
    host = complete.first()
    if host is None:
        raise InvalidInput(f"no online host has all of {', '.join(references)}", field="references")
    return host


# ---- quick image actions (RPC) ------------------------------------------------------------


def tag_image(user, image: Image, data: dict) -> Image:
    """Give the image another reference on its host; the new row belongs to the acting team.

    A reference that already names a different image of another team (or a
    shared system image) on that host is refused: retagging it would change
    what they run.
    """
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    team = acting_team(user, image, data.get("team") or None)
    target = parse_image_reference(data.get("reference"))
    if parse_reference(target).digest:
        raise InvalidInput("a tag cannot contain a digest", field="reference")
    if target == image.reference:
        return image
    _check_reference_free(image, target, team)
    answer = call_host(
        image.host, "agent.image_tag", [image.reference, target], settings.BERTH_IMAGE_RPC_TIMEOUT
    )
    report = answer.get("image") if isinstance(answer, dict) else None
    if not isinstance(report, dict):
        raise AgentError(f"host {image.host.name} answered agent.image_tag without an image")
    record_images(image.host, [{**report, "reference": target}], team=team, create=True)
    return (
        Image.objects.select_related("host", "team")
        .filter(Q(team=team) | Q(team__isnull=True), host=image.host, reference=target)
        .order_by("team")  # the team's own row before a system one
        .first()
    )


def _check_unclaimed(host, reference: str, team, user) -> None:
    """A host's tags are shared by every team on it: a pull or import must not re-point
    a reference another team (or the system) runs. Site admins may."""
    if is_site_admin(user):
        return
    others = Image.objects.filter(host=host, reference=reference).exclude(team=team)
    row = others.first()
    if row is not None:
        owner = "a shared system image" if row.team_id is None else "an image of another team"
        raise Conflict(f"{reference} is {owner} on host {host.name}; use another reference")


def _check_reference_free(image: Image, target: str, team) -> None:
    others = Image.objects.filter(host=image.host, reference=target).exclude(team=team)
    for row in others:
        if image.image_id and row.image_id == image.image_id:
            continue  # already the same image: tagging changes nothing for them
        owner = "a shared system image" if row.team_id is None else "an image of another team"
        raise Conflict(f"{target} is {owner} on host {image.host.name}; choose another reference")


def remove_image(image: Image, force: bool = False) -> dict:
    """Remove the image's reference from its host, like ``docker rmi``.

    While other teams (or the system row) still hold the same reference on
    that host, only this team's row goes and the host is not touched. The
    agent refuses while a container uses the image unless ``force``; that
    refusal is a 409.
    """
    others = Image.objects.filter(host=image.host, reference=image.reference).exclude(pk=image.pk)
    if others.exists():
        if not force and image.containers.filter(state__in=ACTIVE_STATES).exists():
            raise Conflict(f"{image.reference} is used by a container; stop it or use force=1")
        _drop_row(image)
        return {"untagged": [image.reference], "deleted": []}
    answer = call_host(
        image.host,
        "agent.image_remove",
        [image.reference, bool(force)],
        settings.BERTH_IMAGE_RPC_TIMEOUT,
    )
    _drop_row(image)
    answer = answer if isinstance(answer, dict) else {}
    return {
        "untagged": _string_list(answer.get("untagged")),
        "deleted": _string_list(answer.get("deleted")),
    }


def _drop_row(image: Image) -> None:
    # A row still referenced by containers stays, as in sync_host_images.
    Image.objects.filter(pk=image.pk, containers__isnull=True).delete()


def inspect_image(image: Image) -> dict:
    answer = call_host(
        image.host, "agent.image_inspect", [image.reference], settings.BERTH_IMAGE_RPC_TIMEOUT
    )
    if not isinstance(answer, dict):
        raise AgentError(f"host {image.host.name} answered agent.image_inspect with no object")
    return answer


def image_history(image: Image) -> list:
    """The stored history; images reported before it was recorded ask the agent."""
    if image.history:
        return list(image.history)
    answer = inspect_image(image)
    config = answer.get("config") if isinstance(answer.get("config"), dict) else {}
    report = answer.get("image") if isinstance(answer.get("image"), dict) else {}
    history = config.get("history") or report.get("history") or []
    return history if isinstance(history, list) else []


def prune_images(user, data: dict) -> dict:
    """Remove dangling images on a host (``all``: every image no container uses).

    ``all`` removes other teams' unused images too, so only site admins may.
    """
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be an object")
    everything = data.get("all", False)
    if not isinstance(everything, bool):
        raise InvalidInput("'all' must be true or false", field="all")
    if everything and not is_site_admin(user):
        raise Forbidden(
            "only site admins may prune all unused images: it removes other teams' images too"
        )
    if not data.get("host"):
        raise InvalidInput("'host' is required: the host to prune", field="host")
    host = _named_host(data["host"])
    answer = call_host(host, "agent.image_prune", [everything], settings.BERTH_IMAGE_RPC_TIMEOUT)
    answer = answer if isinstance(answer, dict) else {}
    deleted = _string_list(answer.get("deleted"))
    _forget_deleted(host, deleted)
    reclaimed = answer.get("reclaimed")
    return {"deleted": deleted, "reclaimed": reclaimed if isinstance(reclaimed, int) else 0}


def _forget_deleted(host: Host, deleted: list[str]) -> None:
    """Drop rows the prune removed now; the agent's ``images.sync`` that follows confirms it."""
    if not deleted:
        return
    gone = Q(reference__in=deleted) | Q(image_id__in=deleted) | Q(digest__in=deleted)
    Image.objects.filter(gone, host=host, containers__isnull=True).delete()


def _string_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else []


# ---- shared checks ------------------------------------------------------------------------


def parse_image_reference(value: Any, field: str = "reference") -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"'{field}' is required, e.g. \"127.0.0.1:5000/app:1\"", field=field)
    try:
        return normalize_reference(value)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None


def pick_host(host_name: Any, team=None) -> Host:
    """The named online host, else the online host running the fewest containers;
    with ``team``, only hosts its policy allows (apps.teams.policy)."""
    if host_name is not None:
        host = _named_host(host_name)
        if not host.is_online:
            raise InvalidInput(f"host {host.name} is offline", field="host")
        if team is not None:
            team_policy.check_host_allowed(team, host)
        return host
    active = Q(containers__state__in=ACTIVE_STATES)
    online = Host.objects.filter(status=HostStatus.ONLINE)
    if team is not None:
        online = team_policy.allowed_hosts(team, online)
    host = (
        online
        .annotate(load=Count("containers", filter=active))
        .order_by("load", "name")
        .first()
    )
    if host is None:
        raise InvalidInput("no host is online; start an agent or name a 'host'", field="host")
    return host


def _named_host(host_name: Any) -> Host:
    host = Host.objects.filter(name=host_name).first() if isinstance(host_name, str) else None
    if host is None:
        raise InvalidInput(f"unknown host {host_name!r}", field="host")
    return host


def acting_team(user, image: Image, team_slug: str | None):
    """The team an action on ``image`` is done for: its own, or for a shared system image
    the caller's (``team_slug`` or their first team where they may act)."""
    if image.team_id is not None:
        if team_slug and team_slug != image.team.slug:
            raise InvalidInput(
                f"the image belongs to team {image.team.slug}, not {team_slug!r}", field="team"
            )
        return image.team
    return resolve_team_for_create(user, team_slug)
