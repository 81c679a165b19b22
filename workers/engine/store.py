"""The host's content store: blobs by digest, unpacked layers by ChainID, image records.

Layout under `root` (every directory mode 0700):
    blobs/sha256/<hex>      verified on write; written to a temporary name first
    layers/<chain hex>/     an unpacked layer, shared by every image that uses it
    images.json             reference → manifest digest, replaced atomically

A crash leaves at worst a `tmp-*` entry, which the next open removes: nothing
is visible under its final name before it is complete.
"""

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from . import oci, unpack

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class StoreError(Exception):
    pass


class DigestMismatch(StoreError):
    pass


@dataclass(frozen=True)
class ImageRecord:
    reference: str
    digest: str  # manifest digest
    image_id: str  # config digest
    size: int
    created: str
    config: dict
    chain_ids: list[str]
    layers: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    repo_digests: list[str] = field(default_factory=list)

    def as_report(self) -> dict:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "image_id": self.image_id,
            "size": self.size,
            "created": self.created,
            "config": self.config,
            "history": self.history,
            "repo_digests": self.repo_digests,
        }


class ContentStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.index_path = self.root / "images.json"
        self.meta_path = self.root / "repo-digests.json"
        for directory in (self.root, self.root / "blobs", self.blobs, self.layers):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(directory, 0o700)
        self._remove_partial_writes()

    def _remove_partial_writes(self) -> None:
        for parent in (self.blobs, self.layers, self.root):
            for entry in parent.glob("tmp-*"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # blobs
    def blob_path(self, digest: str) -> Path:
        return self.blobs / oci.digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        digest = oci.sha256_digest(data)
        if expected is not None and expected != digest:
            raise DigestMismatch(f"blob digest is {digest}, expected {expected}")
        target = self.blob_path(digest)
        if not target.exists():
            self._atomic_write(target, data)
        return digest

    def put_blob_stream(self, reader, expected: str, progress=None) -> Path:
        """Write a blob from a stream, verifying its digest before it becomes visible."""
        target = self.blob_path(expected)
        if target.exists():
            return target
        hasher = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(prefix="tmp-", dir=self.blobs)
        try:
            with os.fdopen(fd, "wb") as handle:
                while chunk := reader.read(CHUNK):
                    hasher.update(chunk)
                    handle.write(chunk)
                    if progress:
                        progress(len(chunk))
            actual = "sha256:" + hasher.hexdigest()
            if actual != expected:
                raise DigestMismatch(f"blob digest is {actual}, expected {expected}")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def read_blob(self, digest: str) -> bytes:
        data = self.blob_path(digest).read_bytes()
        if oci.sha256_digest(data) != digest:
            raise DigestMismatch(f"stored blob {digest} is corrupt")
        return data

    def read_json_blob(self, digest: str) -> dict:
        return json.loads(self.read_blob(digest))

    def _atomic_write(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix="tmp-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # layers
    def layer_path(self, chain_id: str) -> Path:
        return self.layers / oci.digest_hex(chain_id)

    def has_layer(self, chain_id: str) -> bool:
        return self.layer_path(chain_id).is_dir()

    def unpack_layer(self, layer_digest: str, diff_id: str, chain_id: str) -> Path:
        """Unpack a stored layer blob once; later images with the same ChainID reuse it.

        Each layer gets a directory of its own (overlayfs stacks them), so
        layers unpack independently and in parallel, in any order.
        """
        target = self.layer_path(chain_id)
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.layers))
        try:
            try:
                actual = _extract_tar(self.blob_path(layer_digest), tmp)
            except unpack.UnsafeLayer as exc:
                raise StoreError(f"layer {layer_digest} refused: {exc}") from exc
            if actual != diff_id:
                raise DigestMismatch(f"layer DiffID is {actual}, config says {diff_id}")
            os.chmod(tmp, 0o755)
            _publish_dir(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    # image records
    def _read_json(self, path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return {}

    def _read_index(self) -> dict[str, str]:
        return self._read_json(self.index_path)

    def add_image(self, reference: str, manifest_digest: str,
                  repo_digest: str | None = None) -> "ImageRecord":
        """Record an image whose manifest, config and layers are all in the store."""
        self.tag(reference, manifest_digest)
        if repo_digest:
            image_id = self.read_json_blob(manifest_digest)["config"]["digest"]
            meta = self._read_json(self.meta_path)
            known = meta.setdefault(image_id, [])
            name = repo_digest.split("@", 1)[0]
            known[:] = [d for d in known if d.split("@", 1)[0] != name] + [repo_digest]
            self._atomic_write(self.meta_path, oci.canonical_json(meta))
        return self.resolve(reference)

    def tag(self, reference: str, manifest_digest: str) -> None:
        if not self.has_blob(manifest_digest):
            raise StoreError(f"no manifest {manifest_digest} in the store")
        index = self._read_index()
        index[reference] = manifest_digest
        self._atomic_write(self.index_path, oci.canonical_json(index))

    def untag(self, reference: str) -> str:
        index = self._read_index()
        if reference not in index:
            raise StoreError(f"no such image: {reference}")
        digest = index.pop(reference)
        self._atomic_write(self.index_path, oci.canonical_json(index))
        return digest

    def resolve(self, reference: str) -> ImageRecord:
        """An image by reference, by image id (`sha256:…`, or a unique prefix of its hex)."""
        index = self._read_index()
        digest = index.get(reference)
        if digest is not None:
            return self._record(reference, digest)
        matches = [record for record in self.images() if _matches_id(reference, record.image_id)]
        if len({record.image_id for record in matches}) > 1:
            raise StoreError(f"image id prefix {reference!r} is ambiguous")
        if not matches:
            raise StoreError(f"no such image: {reference}")
        return matches[0]

    def images(self) -> list[ImageRecord]:
        return [self._record(ref, digest) for ref, digest in sorted(self._read_index().items())]

    def _record(self, reference: str, manifest_digest: str) -> ImageRecord:
        manifest = self.read_json_blob(manifest_digest)
        config_digest = manifest["config"]["digest"]
        config = self.read_json_blob(config_digest)
        size = sum(layer["size"] for layer in manifest["layers"])
        return ImageRecord(
            reference=reference,
            digest=manifest_digest,
            image_id=config_digest,
            size=size,
            created=config.get("created", ""),
            config=config.get("config", {}),
            chain_ids=oci.chain_ids(config["rootfs"]["diff_ids"]),
            layers=manifest["layers"],
            history=config.get("history", []),
            repo_digests=self._read_json(self.meta_path).get(config_digest, []),
        )

    def layer_dirs(self, record: ImageRecord) -> list[Path]:
        """The image's unpacked layers, top first, as overlayfs wants its lowerdir."""
        return [self.layer_path(chain_id) for chain_id in reversed(record.chain_ids)]

    # garbage collection
    def collect_garbage(self, pinned_layers: set[str] = frozenset()) -> int:
        """Delete blobs and layers that no tagged image (nor a container) uses; bytes freed.

        `pinned_layers` are layer directory names (ChainID hex) that containers
        still stack, even when their image was removed with force.
        """
        keep_blobs: set[str] = set()
        keep_layers = set(pinned_layers)
        for record in self.images():
            keep_blobs.update({record.digest, record.image_id})
            keep_blobs.update(layer["digest"] for layer in record.layers)
            keep_layers.update(oci.digest_hex(c) for c in record.chain_ids)
        keep_hex = {oci.digest_hex(d) for d in keep_blobs}
        freed = 0
        for blob in self.blobs.iterdir():
            if blob.name not in keep_hex and not blob.name.startswith("tmp-"):
                freed += blob.stat().st_size
                blob.unlink()
        for layer in self.layers.iterdir():
            if layer.name not in keep_layers and not layer.name.startswith("tmp-"):
                freed += _tree_size(layer)
                shutil.rmtree(layer)
        self._drop_stale_meta()
        return freed

    def _drop_stale_meta(self) -> None:
        meta = self._read_json(self.meta_path)
        live = {record.image_id for record in self.images()}
        kept = {image_id: digests for image_id, digests in meta.items() if image_id in live}
        if kept != meta:
            self._atomic_write(self.meta_path, oci.canonical_json(kept))


def _matches_id(text: str, image_id: str) -> bool:
    """`sha256:<hex>`, or a prefix of the id's hex of at least 4 digits, like Docker's short ids."""
    hex_part = text.removeprefix("sha256:")
    if len(hex_part) < 4 or any(c not in "0123456789abcdef" for c in hex_part):
        return False
    return image_id.removeprefix("sha256:").startswith(hex_part)


def _publish_dir(tmp: Path, target: Path) -> None:
    """Rename into place; a concurrent pull that got there first wins, and we drop ours."""
    try:
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _extract_tar(blob: Path, target: Path) -> str:
    """Extract a (gzip, zstd or plain) layer tar and return the DiffID of its tar stream."""
    hasher = hashlib.sha256()
    with open(blob, "rb") as raw:
        stream = _HashingReader(decompressed(raw), hasher)
        unpack.extract(stream, target)
        while stream.read(CHUNK):  # the DiffID covers the tar's padding too
            pass
    return "sha256:" + hasher.hexdigest()


def decompressed(raw):
    """A reader of the layer's tar stream, whatever compression the blob uses."""
    head = raw.read(4)
    raw.seek(0)
    if head[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=raw)
    if head == ZSTD_MAGIC:
        return zstandard.ZstdDecompressor().stream_reader(raw, read_size=CHUNK)
    return raw


class _HashingReader:
    def __init__(self, inner, hasher):
        self.inner = inner
        self.hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hasher.update(data)
        return data
