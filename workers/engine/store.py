"""The host's content store: blobs by digest, unpacked layers by ChainID, image records.

Layout under `root` (every directory mode 0700):
    blobs/sha256/<hex>      verified on write; written to a temporary name first
    layers/<chain hex>/     an unpacked layer, shared by every image that uses it
    images.json             reference → manifest digest, replaced atomically

A crash leaves at worst a `tmp-*` entry, which the next open removes: nothing
is visible under its final name before it is complete.
"""

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import oci


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

    def as_report(self) -> dict:
        return {
            "reference": self.reference,
            "digest": self.digest,
            "image_id": self.image_id,
            "size": self.size,
            "created": self.created,
            "config": self.config,
        }


class ContentStore:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.layers = self.root / "layers"
        self.index_path = self.root / "images.json"
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
        """Unpack a stored layer blob once; later images with the same ChainID reuse it."""
        target = self.layer_path(chain_id)
        if target.is_dir():
            return target
        tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=self.layers))
        try:
            actual = _extract_tar(self.blob_path(layer_digest), tmp)
            if actual != diff_id:
                raise DigestMismatch(f"layer DiffID is {actual}, config says {diff_id}")
            os.chmod(tmp, 0o755)
            os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return target

    # image records
    def _read_index(self) -> dict[str, str]:
        try:
            return json.loads(self.index_path.read_text())
        except FileNotFoundError:
            return {}

    def tag(self, reference: str, manifest_digest: str) -> None:
        if not self.has_blob(manifest_digest):
            raise StoreError(f"no manifest {manifest_digest} in the store")
        index = self._read_index()
        index[reference] = manifest_digest
        self._atomic_write(self.index_path, oci.canonical_json(index))

    def resolve(self, reference: str) -> ImageRecord:
        digest = self._read_index().get(reference)
        if digest is None:
            raise StoreError(f"no such image: {reference}")
        return self._record(reference, digest)

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
        )

    def layer_dirs(self, record: ImageRecord) -> list[Path]:
        """The image's unpacked layers, top first, as overlayfs wants its lowerdir."""
        return [self.layer_path(chain_id) for chain_id in reversed(record.chain_ids)]


def _extract_tar(blob: Path, target: Path) -> str:
    """Extract an uncompressed or gzip layer tar and return the DiffID of its tar stream.

    The `tar` filter refuses absolute names, `..` and links that leave the target,
    and never creates device nodes outside the target.
    """
    hasher = hashlib.sha256()
    with open(blob, "rb") as raw:
        stream = _HashingReader(_decompressed(raw), hasher)
        with tarfile.open(fileobj=stream, mode="r|") as archive:
            for member in archive:
                if member.isdev():
                    continue
                archive.extract(member, target, filter="tar", numeric_owner=True)
        while stream.read(1 << 20):
            pass
    return "sha256:" + hasher.hexdigest()


def _decompressed(raw):
    head = raw.read(2)
    raw.seek(0)
    if head == b"\x1f\x8b":
        import gzip

        return gzip.GzipFile(fileobj=raw)
    return raw


class _HashingReader:
    def __init__(self, inner, hasher):
        self.inner = inner
        self.hasher = hasher

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hasher.update(data)
        return data
