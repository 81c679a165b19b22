"""Keeps the Image table a mirror of what each host reports having."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet

from apps.images.models import Image
from apps.images.reference import normalize_reference
from berth.errors import InvalidInput
from berth.timestamps import parse_iso

log = logging.getLogger(__name__)


@transaction.atomic
def sync_host_images(host, images: list[dict]) -> list[Image]:
    """Upsert the reported images and drop rows the host no longer reports.

    Rows still referenced by a container are kept (the FK protects them):
    the container's history must stay readable even if the image was pruned.
    Malformed entries are skipped with a warning instead of failing the whole
    registration, so one odd image cannot keep a host from coming online.
    """
    if not isinstance(images, list):
        raise InvalidInput("'images' must be a list")
    kept = [row for row in (_upsert(host, entry) for entry in images) if row is not None]
    stale = Image.objects.filter(host=host).exclude(pk__in=[row.pk for row in kept])
    stale.filter(containers__isnull=True).delete()
    return kept


def _upsert(host, entry: Any) -> Image | None:
    try:
        fields = _image_fields(entry)
    except (ValueError, TypeError) as exc:
        log.warning("host %s reported an unusable image %r: %s", host.name, entry, exc)
        return None
    image, _ = Image.objects.update_or_create(
        host=host, reference=fields.pop("reference"), defaults=fields
    )
    return image


def _image_fields(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise TypeError("image entry must be an object")
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise TypeError("'config' must be an object")
    size = int(entry.get("size") or 0)
    if size < 0:
        raise ValueError("'size' must not be negative")
    return {
        "reference": normalize_reference(entry.get("reference", "")),
        "digest": str(entry.get("digest") or "")[:100],
        "image_id": str(entry.get("image_id") or "")[:100],
        "size": size,
        "created": parse_iso(entry.get("created")),
        "config": config,
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
