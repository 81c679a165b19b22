"""Image archives: `docker save` tarballs and OCI image layouts, both directions,
and rootfs tarballs imported as single-layer images.

`save` in "docker" form writes what Docker 25+ writes: an OCI layout
(index.json, oci-layout, blobs/) that also carries Docker's manifest.json,
with uncompressed layers, so `docker load`, skopeo's docker-archive and its
oci-archive transports all read it. The "oci" form keeps the stored
manifests and compressed blobs, so digests survive the round trip.
"""

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from pathlib import Path

from . import oci, unpack
from .pull import host_architecture, select_platform
from .reference import familiar, normalize_reference, parse_reference
from .store import CHUNK, ContentStore, ImageRecord, StoreError, decompressed

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMPORT_CHANGES = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "Labels", "ExposedPorts",
                  "Volumes", "StopSignal")
LAYER_MEDIA = {"gzip": oci.MEDIA_LAYER_GZIP, "zstd": oci.MEDIA_LAYER_ZSTD,
               "none": oci.MEDIA_LAYER_TAR}


class ArchiveError(Exception):
    pass


# save
def save(store: ContentStore, references: list[str], out, form: str = "docker") -> None:
    """Write the images as one tar stream to the binary file `out`."""
    records = [store.resolve(_normal(ref)) for ref in references]
    with tempfile.TemporaryDirectory(prefix="tmp-", dir=store.root) as scratch, \
            tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        writer = _LayoutWriter(archive)
        if form == "oci":
            _save_oci(store, records, writer)
        elif form == "docker":
            _save_docker(store, records, writer, Path(scratch))
        else:
            raise ArchiveError(f"unknown archive format {form!r}: use docker or oci")


class _LayoutWriter:
    def __init__(self, archive: tarfile.TarFile):
        self.archive = archive
        self.written: set[str] = set()
        self.index: list[dict] = []

    def blob_path(self, digest: str) -> str:
        return f"blobs/sha256/{oci.digest_hex(digest)}"

    def add_bytes(self, name: str, data: bytes) -> None:
        self.add_file(name, io.BytesIO(data), len(data))

    def add_file(self, name: str, reader, size: int) -> None:
        if name in self.written:
            return
        self.written.add(name)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, 0o644, 0
        self.archive.addfile(info, reader)

    def add_blob_file(self, digest: str, path: Path) -> None:
        with open(path, "rb") as reader:
            self.add_file(self.blob_path(digest), reader, path.stat().st_size)

    def finish(self, extra: dict[str, bytes]) -> None:
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            self.archive.addfile(info)
        index = {"schemaVersion": 2, "mediaType": oci.MEDIA_INDEX, "manifests": self.index}
        self.add_bytes("index.json", json.dumps(index).encode())
        self.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        for name, data in extra.items():
            self.add_bytes(name, data)

    def index_entry(self, digest: str, size: int, reference: str) -> None:
        parsed = parse_reference(reference) if not reference.startswith("sha256:") else None
        annotations = {}
        if parsed is not None:
            annotations = {"io.containerd.image.name": str(parsed),
                           "org.opencontainers.image.ref.name": parsed.tag or ""}
        self.index.append({"mediaType": oci.MEDIA_MANIFEST, "digest": digest, "size": size,
                           "annotations": annotations})


def _save_oci(store: ContentStore, records: list[ImageRecord], writer: _LayoutWriter) -> None:
    for record in records:
        for layer in record.layers:
            writer.add_blob_file(layer["digest"], store.blob_path(layer["digest"]))
        writer.add_blob_file(record.image_id, store.blob_path(record.image_id))
        manifest = store.blob_path(record.digest)
        writer.add_blob_file(record.digest, manifest)
        writer.index_entry(record.digest, manifest.stat().st_size, record.reference)
    writer.finish({})


def _save_docker(store, records: list[ImageRecord], writer: _LayoutWriter,
                 scratch: Path) -> None:
    docker_manifest = []
    for record in records:
        config_bytes = store.read_blob(record.image_id)
        diff_ids = json.loads(config_bytes)["rootfs"]["diff_ids"]
        layer_descriptors = []
        for layer, diff_id in zip(record.layers, diff_ids, strict=True):
            path = _uncompressed_layer(store, layer, diff_id, scratch)
            writer.add_blob_file(diff_id, path)
            layer_descriptors.append({"mediaType": oci.MEDIA_LAYER_TAR, "digest": diff_id,
                                      "size": path.stat().st_size})
        writer.add_bytes(writer.blob_path(record.image_id), config_bytes)
        manifest = oci.canonical_json({
            "schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST,
            "config": {"mediaType": oci.MEDIA_CONFIG, "digest": record.image_id,
                       "size": len(config_bytes)},
            "layers": layer_descriptors})
        manifest_digest = oci.sha256_digest(manifest)
        writer.add_bytes(writer.blob_path(manifest_digest), manifest)
        writer.index_entry(manifest_digest, len(manifest), record.reference)
        tags = [] if record.reference.startswith("sha256:") else [familiar(record.reference)]
        docker_manifest.append({"Config": writer.blob_path(record.image_id), "RepoTags": tags,
                                "Layers": [writer.blob_path(d) for d in diff_ids]})
    writer.finish({"manifest.json": json.dumps(docker_manifest).encode()})


def _uncompressed_layer(store, layer: dict, diff_id: str, scratch: Path) -> Path:
    blob = store.blob_path(layer["digest"])
    if layer["digest"] == diff_id:
        return blob
    target = scratch / oci.digest_hex(diff_id)
    if not target.exists():
        with open(blob, "rb") as raw, open(target, "wb") as out:
            shutil.copyfileobj(decompressed(raw), out, CHUNK)
    return target


# load
def load(store: ContentStore, source, default_reference: str | None = None,
         protected: frozenset[str] = frozenset()) -> list[ImageRecord]:
    """Load a docker-save archive or an OCI layout (as a tar stream); returns the images.

    References in `protected` (other teams' on this host) may be loaded only as
    the very image they already name, never re-pointed.
    """
    with tempfile.TemporaryDirectory(prefix="tmp-", dir=store.root) as scratch:
        root = Path(scratch)
        try:
            unpack.extract(source, root)
        except (unpack.UnsafeLayer, tarfile.TarError) as exc:
            raise ArchiveError(f"not a usable image archive: {exc}") from None
        if (root / "manifest.json").is_file():
            return _load_docker(store, root, protected)
        if (root / "index.json").is_file():
            return _load_oci(store, root, default_reference, protected)
        raise ArchiveError("not an image archive: it has neither manifest.json nor index.json")


def _inside(root: Path, name: str) -> Path:
    parts = unpack.split_name(name)
    path = root.joinpath(*parts)
    if (not parts or any(p.is_symlink() for p in [path, *path.parents] if root in p.parents)
            or not path.is_file()):
        raise ArchiveError(f"archive entry {name!r} is not a plain file in the archive")
    return path


def _load_docker(store: ContentStore, root: Path, protected) -> list[ImageRecord]:
    try:
        entries = json.loads((root / "manifest.json").read_text())
    except ValueError:
        raise ArchiveError("manifest.json is not JSON") from None
    records = []
    for entry in entries:
        config_bytes = _inside(root, entry["Config"]).read_bytes()
        diff_ids = json.loads(config_bytes).get("rootfs", {}).get("diff_ids") or []
        if len(diff_ids) != len(entry.get("Layers") or []):
            raise ArchiveError(f"{entry['Config']}: config and manifest disagree on layers")
        layers = [_store_layer_file(store, _inside(root, name), diff_id)
                  for name, diff_id in zip(entry["Layers"], diff_ids, strict=True)]
        manifest_digest = _store_image(store, config_bytes, layers, diff_ids)
        tags = [normalize_reference(tag) for tag in entry.get("RepoTags") or []]
        records += _tag_all(store, manifest_digest, tags, protected)
    return records


def _store_layer_file(store: ContentStore, path: Path, diff_id: str) -> dict:
    digest = _file_digest(path)
    with open(path, "rb") as reader:
        store.put_blob_stream(reader, digest)
    return {"mediaType": LAYER_MEDIA[_compression(path)], "digest": digest,
            "size": path.stat().st_size}


def _store_image(store: ContentStore, config_bytes: bytes, layers: list[dict],
                 diff_ids: list[str]) -> str:
    config_digest = store.put_blob(config_bytes)
    for layer, diff_id, chain_id in zip(layers, diff_ids, oci.chain_ids(diff_ids), strict=True):
        store.unpack_layer(layer["digest"], diff_id, chain_id)
    manifest = {"schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST,
                "config": {"mediaType": oci.MEDIA_CONFIG, "digest": config_digest,
                           "size": len(config_bytes)},
                "layers": layers}
    return store.put_blob(oci.canonical_json(manifest))


def _tag_all(store: ContentStore, manifest_digest: str, tags: list[str],
             protected=frozenset()) -> list[ImageRecord]:
    for tag in set(tags) & set(protected):
        if store.resolve(tag).digest != manifest_digest:
            raise ArchiveError(f"{tag} is another team's image on this host; load it under "
                               "another name")
    if not tags:
        tags = [store.read_json_blob(manifest_digest)["config"]["digest"]]
    return [store.add_image(tag, manifest_digest) for tag in tags]


def _load_oci(store: ContentStore, root: Path, default_reference: str | None,
              protected) -> list[ImageRecord]:
    index = json.loads((root / "index.json").read_text())
    records = []
    for descriptor in index.get("manifests") or []:
        descriptor = _platform_manifest(root, descriptor)
        manifest_bytes = _copy_blob(store, root, descriptor["digest"])
        manifest = json.loads(manifest_bytes)
        _copy_blob(store, root, manifest["config"]["digest"])
        config = store.read_json_blob(manifest["config"]["digest"])
        diff_ids = config.get("rootfs", {}).get("diff_ids") or []
        for layer in manifest["layers"]:
            _copy_blob(store, root, layer["digest"])
        for layer, diff_id, chain_id in zip(manifest["layers"], diff_ids,
                                            oci.chain_ids(diff_ids), strict=True):
            store.unpack_layer(layer["digest"], diff_id, chain_id)
        name = _oci_name(descriptor.get("annotations") or {}, default_reference)
        records += _tag_all(store, descriptor["digest"], [name] if name else [], protected)
    return records


def _platform_manifest(root: Path, descriptor: dict) -> dict:
    while descriptor.get("mediaType") in oci.INDEX_TYPES:
        nested = json.loads(_inside(root, f"blobs/sha256/{oci.digest_hex(descriptor['digest'])}")
                            .read_bytes())
        descriptor = {**select_platform(nested, "archive"),
                      "annotations": descriptor.get("annotations") or {}}
    return descriptor


def _oci_name(annotations: dict, default_reference: str | None) -> str | None:
    full = annotations.get("io.containerd.image.name")
    ref_name = annotations.get("org.opencontainers.image.ref.name") or ""
    if full:
        return normalize_reference(full)
    if "/" in ref_name or (":" in ref_name and not ref_name.startswith(":")):
        return normalize_reference(ref_name)
    if default_reference:
        base = parse_reference(default_reference)
        return normalize_reference(f"{base.name}:{ref_name or base.tag or 'latest'}")
    return None


def _copy_blob(store: ContentStore, root: Path, digest: str) -> bytes | None:
    path = _inside(root, f"blobs/sha256/{oci.digest_hex(digest)}")
    with open(path, "rb") as reader:
        store.put_blob_stream(reader, digest)
    return path.read_bytes() if path.stat().st_size < (4 << 20) else None


# import
def import_rootfs(store: ContentStore, source, reference: str | None,
                  changes: dict | None = None) -> ImageRecord:
    """A rootfs tarball (plain, gzip or zstd) as a single-layer image."""
    with tempfile.TemporaryDirectory(prefix="tmp-", dir=store.root) as scratch:
        path = Path(scratch) / "layer"
        with open(path, "wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        diff_id = _diff_id(path)
        layer = _store_layer_file(store, path, diff_id)
    config = _import_config(diff_id, changes or {})
    manifest_digest = _store_image(store, oci.canonical_json(config), [layer], [diff_id])
    tags = [normalize_reference(reference)] if reference else []
    return _tag_all(store, manifest_digest, tags)[0]


def _import_config(diff_id: str, changes: dict) -> dict:
    unknown = set(changes) - set(IMPORT_CHANGES)
    if unknown:
        raise ArchiveError(f"unsupported image changes: {', '.join(sorted(unknown))}")
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"architecture": host_architecture(), "os": "linux", "created": created,
            "config": {"Env": [f"PATH={DEFAULT_PATH}"], **changes},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": created, "created_by": "berth import"}]}


# helpers
def _file_digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _diff_id(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as raw:
        stream = decompressed(raw)
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def _compression(path: Path) -> str:
    with open(path, "rb") as reader:
        head = reader.read(4)
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return "none"


def _normal(reference: str) -> str:
    if reference.startswith("sha256:") or all(c in "0123456789abcdef" for c in reference):
        return reference
    try:
        return normalize_reference(reference)
    except ValueError as exc:
        raise StoreError(str(exc)) from None


