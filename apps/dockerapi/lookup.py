"""Finding containers and images the way dockerd does, within the caller's teams.

Containers: full id, unique id prefix, name or ``/name``. Images: reference
in any spelling (``busybox``, ``library/busybox:latest``,
``docker.io/library/busybox:latest``, ``name@sha256:...``), ``sha256:<id>``,
or a unique id prefix. Another team's object is simply not found (404).
"""

from __future__ import annotations

import re

from django.db.models import Q, QuerySet

from apps.containers.models import Container
from apps.dockerapi.errors import DockerError, no_such_container, no_such_image
from apps.images.models import Image
from apps.images.reference import normalize_reference
from apps.teams.services import can_act, restrict_to_teams

HEX_PREFIX = re.compile(r"(?:sha256:)?[0-9a-f]{1,64}")
DOCKER_HUB = "docker.io/"
OFFICIAL = "docker.io/library/"


def containers_of(user) -> QuerySet[Container]:
    rows = Container.objects.select_related("team", "host", "image")
    return restrict_to_teams(rows, user)


def find_container(user, name: str) -> Container:
    rows = containers_of(user)
    if not name:
        raise no_such_container(name)
    exact = rows.filter(Q(pk=name) | Q(name=name.lstrip("/"))).first()
    if exact is not None:
        return exact
    if re.fullmatch(r"[0-9a-f]{1,63}", name):
        matches = list(rows.filter(pk__startswith=name)[:2])
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise DockerError(400, f"multiple IDs found with provided prefix: {name}")
    raise no_such_container(name)


def require_act(user, obj) -> None:
    """Operators and owners act on their team's objects; viewers only read."""
    if not can_act(user, getattr(obj, "team", None)):
        raise DockerError(403, "your role in this team only allows reading (operator or owner)")


def images_of(user) -> QuerySet[Image]:
    rows = Image.objects.select_related("host", "team")
    return restrict_to_teams(rows, user, shared=True)


def image_rows(user, name: str) -> list[Image]:
    """Every row (host, team) of the image ``name`` names; the caller's team's own first."""
    rows = images_of(user)
    found: list[Image] = []
    if HEX_PREFIX.fullmatch(name) and (name.startswith("sha256:") or len(name) >= 4):
        wanted = name if name.startswith("sha256:") else f"sha256:{name}"
        found = list(rows.filter(image_id__startswith=wanted))
        if len({row.image_id for row in found}) > 1:
            raise DockerError(400, f"multiple images found with provided prefix: {name}")
    if not found:
        try:
            reference = normalize_reference(name)
        except ValueError:
            raise no_such_image(name) from None
        found = list(rows.filter(reference=reference))
        if not found and "@" in reference:
            found = _by_repo_digest(rows, reference)
    found.sort(key=lambda row: (row.team_id is None, row.host.name))
    return found


def find_image(user, name: str) -> Image:
    rows = image_rows(user, name)
    if not rows:
        raise no_such_image(name)
    return rows[0]


def _by_repo_digest(rows: QuerySet[Image], reference: str) -> list[Image]:
    repository, _, digest = reference.partition("@")
    candidates = rows.filter(reference__startswith=repository.rsplit(":", 1)[0])
    return [
        row
        for row in candidates
        if row.digest == digest or any(item.endswith(digest) for item in row.repo_digests)
    ]


def familiar(reference: str) -> str:
    """``docker.io/library/busybox:latest`` → ``busybox:latest``, as the docker CLI shows it."""
    if reference.startswith(OFFICIAL):
        return reference[len(OFFICIAL) :]
    if reference.startswith(DOCKER_HUB):
        return reference[len(DOCKER_HUB) :]
    return reference


def as_typed(reference: str) -> str:
    """How a container's image is shown (``Config.Image``, ``docker ps``): ``busybox``, not
    ``docker.io/library/busybox:latest``; Berth keeps only the normalised form."""
    shown = familiar(reference)
    return shown.removesuffix(":latest") if "@" not in shown else shown
