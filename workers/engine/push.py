"""Pushes an image from the content store to a registry.

Each blob is checked first (HEAD) and skipped when the registry has it; when
the image came from another repository on the same registry, the blob is
mounted across repositories instead of uploaded. The manifest goes last, so
the registry never holds a manifest whose blobs are missing.
"""

import json

from . import oci
from .progress import DONE, EXISTS, MOUNTED, UPLOADING, Progress
from .pull import repository_for
from .reference import parse_reference
from .registry import RegistryError
from .store import ContentStore, ImageRecord, StoreError


class PushError(Exception):
    pass


def push(store: ContentStore, reference_text: str, registries: dict | None = None,
         on_progress=None) -> ImageRecord:
    try:
        reference = parse_reference(reference_text)
        record = store.resolve(str(reference))
    except (ValueError, StoreError) as exc:
        raise PushError(str(exc)) from None
    if reference.digest:
        raise PushError(f"{reference}: push a tag, not a digest")
    repository = repository_for(reference, registries)
    progress = Progress(on_progress)
    manifest_bytes = store.read_blob(record.digest)
    manifest = json.loads(manifest_bytes)
    blobs = [*manifest["layers"], manifest["config"]]
    sources = _mount_sources(record, reference)
    try:
        for blob in blobs:
            progress.add(blob["digest"], blob.get("size", 0))
        for blob in blobs:
            _push_blob(store, repository, blob, sources, progress)
        media_type = manifest.get("mediaType") or oci.MEDIA_MANIFEST
        digest = repository.put_manifest(reference.tag, manifest_bytes, media_type)
    except RegistryError as exc:
        raise PushError(str(exc)) from None
    return store.add_image(str(reference), record.digest, f"{reference.name}@{digest}")


def _mount_sources(record: ImageRecord, reference) -> list[str]:
    """Other repositories on the same registry that hold this image's blobs."""
    sources = []
    for repo_digest in record.repo_digests:
        name = repo_digest.split("@", 1)[0]
        domain, _, path = name.partition("/")
        if domain == reference.domain and path != reference.path:
            sources.append(path)
    return sources


def _push_blob(store, repository, blob: dict, sources: list[str], progress: Progress) -> None:
    digest = blob["digest"]
    if repository.has_blob(digest):
        progress.set_state(digest, EXISTS)
        return
    progress.set_state(digest, UPLOADING)
    path = store.blob_path(digest)

    def open_reader():
        return _Counting(open(path, "rb"), digest, progress)  # noqa: SIM115 - closed by caller

    how = repository.upload_blob(digest, open_reader, path.stat().st_size,
                                 mount_from=sources[0] if sources else None)
    progress.set_state(digest, MOUNTED if how == "mounted" else DONE)


class _Counting:
    """A file reader that reports how much was sent."""

    def __init__(self, reader, digest: str, progress: Progress):
        self.reader = reader
        self.digest = digest
        self.progress = progress

    def read(self, size: int = -1) -> bytes:
        data = self.reader.read(size if size and size > 0 else 1 << 20)
        if data:
            self.progress.advance(self.digest, len(data))
        return data

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.reader.close()
