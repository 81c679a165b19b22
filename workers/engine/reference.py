"""Docker-style image reference normalisation, in pure Python.

Users type ``busybox``; agents report ``docker.io/library/busybox:latest``.
Normalising both sides to the same full form lets a plain string comparison
decide "is this image on that host?".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAINS = {"index.docker.io", "registry-1.docker.io"}
OFFICIAL_NAMESPACE = "library"
DEFAULT_TAG = "latest"
MAX_NAME_LENGTH = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


@dataclass(frozen=True)
class Reference:
    domain: str
    path: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def normalize_reference(reference: str) -> str:
    """``"busybox"`` → ``"docker.io/library/busybox:latest"``; ValueError says what is wrong."""
    return str(parse_reference(reference))


def parse_reference(reference: str) -> Reference:
    if not isinstance(reference, str) or not reference.strip():
        raise ValueError("image reference is empty")
    text = reference.strip()
    remainder, digest = _split_digest(text)
    remainder, tag = _split_tag(remainder)
    domain, path = _split_domain(remainder)
    _check_path(path, text)
    if len(domain) + 1 + len(path) > MAX_NAME_LENGTH:
        raise ValueError(f"image name in {text!r} is longer than {MAX_NAME_LENGTH} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain=domain, path=path, tag=tag, digest=digest)


def _split_digest(text: str) -> tuple[str, str | None]:
    if "@" not in text:
        return text, None
    name, digest = text.split("@", 1)
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"invalid digest {digest!r} in image reference {text!r}")
    algorithm, hex_part = digest.split(":", 1)
    if algorithm == "sha256" and len(hex_part) != 64:
        raise ValueError(f"sha256 digest in {text!r} must have 64 hex digits")
    return name, f"{algorithm}:{hex_part.lower()}"


def _split_tag(text: str) -> tuple[str, str | None]:
    """A ``:`` after the last ``/`` starts a tag; one before it belongs to a registry port."""
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon <= slash:
        return text, None
    name, tag = text[:colon], text[colon + 1 :]
    if not _TAG.fullmatch(tag):
        raise ValueError(f"invalid tag {tag!r}: use letters, digits, '_', '.', '-' (max 128)")
    return name, tag


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    looks_like_domain = "." in first or ":" in first or first == "localhost"
    if not sep or not looks_like_domain:
        domain, path = DEFAULT_DOMAIN, name
    else:
        if not _DOMAIN.fullmatch(first):
            raise ValueError(f"invalid registry {first!r} in image reference {name!r}")
        domain, path = first, rest
    if domain in LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = f"{OFFICIAL_NAMESPACE}/{path}"
    return domain, path


def _check_path(path: str, text: str) -> None:
    for component in path.split("/"):
        if _COMPONENT.fullmatch(component):
            continue
        if component.lower() != component and _COMPONENT.fullmatch(component.lower()):
            raise ValueError(f"repository name in {text!r} must be lowercase")
        raise ValueError(
            f"invalid image name {text!r}: path component {component!r} must be lowercase "
            "letters and digits separated by '.', '_', '__' or '-'"
        )


def familiar(reference: str) -> str:
    """The short form Docker shows: `busybox:latest` for docker.io/library/busybox:latest."""
    text = reference.removeprefix(f"{DEFAULT_DOMAIN}/")
    if text != reference:
        text = text.removeprefix(f"{OFFICIAL_NAMESPACE}/")
    return text
