"""Pulls an image from a registry into the content store.

Manifest (an index picks the host's platform, skipping attestations) →
config → layers, downloaded in parallel and each unpacked as soon as it has
arrived and been verified. Layers whose ChainID is already unpacked are
skipped. Only when every piece is in place is the reference tagged, so an
interrupted pull leaves the store as it was plus reusable blobs.
"""

import json
import platform
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from . import oci
from .progress import DONE, DOWNLOADING, EXISTS, EXTRACTING, Progress
from .reference import parse_reference
from .registry import RegistryError, RegistrySettings, Repository
from .store import ContentStore, ImageRecord

MAX_CONFIG = 8 << 20
PARALLEL_LAYERS = 4
ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
                 "s390x": "s390x", "riscv64": "riscv64"}
LAYER_TYPES = {oci.MEDIA_LAYER_TAR, oci.MEDIA_LAYER_GZIP, oci.MEDIA_LAYER_ZSTD,
               oci.DOCKER_LAYER_GZIP, "application/vnd.docker.image.rootfs.diff.tar"}


class PullError(Exception):
    pass


def host_architecture() -> str:
    machine = platform.machine()
    return ARCHITECTURES.get(machine, machine)


def repository_for(reference, registries: dict | None) -> Repository:
    settings = RegistrySettings.from_dict((registries or {}).get(reference.domain))
    return Repository(reference.domain, reference.path, settings)


def _parsed(reference_text: str, registries: dict | None):
    try:
        reference = parse_reference(reference_text)
    except ValueError as exc:
        raise PullError(str(exc)) from None
    return reference, repository_for(reference, registries)


def pull(store: ContentStore, reference_text: str, registries: dict | None = None,
         on_progress=None) -> ImageRecord:
    reference, repository = _parsed(reference_text, registries)
    try:
        return _pull(store, reference, repository, Progress(on_progress))
    except RegistryError as exc:
        raise PullError(str(exc)) from None


def pull_tags(store: ContentStore, repository_text: str, registries: dict | None = None,
              on_progress=None, skip: frozenset[str] = frozenset()) -> list[ImageRecord]:
    """Every tag of the repository (``docker pull -a``), but the references in ``skip``
    (which other owners hold on this host)."""
    reference, repository = _parsed(repository_text, registries)
    try:
        tags = repository.tags()
        pulled = []
        for tag in tags:
            tagged = parse_reference(f"{reference.name}:{tag}")
            if str(tagged) not in skip:
                pulled.append(_pull(store, tagged, repository, Progress(on_progress)))
    except RegistryError as exc:
        raise PullError(str(exc)) from None
    if not pulled:
        raise PullError(f"{reference.name}: no tag to pull" + (" of yours" if tags else ""))
    return pulled


def _pull(store, reference, repository, progress: Progress) -> ImageRecord:
    body, media_type = repository.get_manifest(reference.digest or reference.tag)
    repo_digest = f"{reference.name}@{oci.sha256_digest(body)}"
    if media_type in oci.INDEX_TYPES:
        descriptor = select_platform(json.loads(body), str(reference))
        body, media_type = repository.get_manifest(descriptor["digest"])
    manifest = _check_manifest(body, media_type, str(reference))
    config = _fetch_config(store, repository, manifest["config"])
    diff_ids = config.get("rootfs", {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest["layers"]):
        raise PullError(f"{reference}: the config lists {len(diff_ids)} layers, "
                        f"the manifest {len(manifest['layers'])}")
    _fetch_layers(store, repository, manifest["layers"], diff_ids, progress)
    manifest_digest = store.put_blob(body)
    return store.add_image(str(reference), manifest_digest, repo_digest)


def select_platform(index: dict, name: str) -> dict:
    arch = host_architecture()
    for descriptor in index.get("manifests") or []:
        annotations = descriptor.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        wanted = descriptor.get("platform") or {}
        if wanted.get("os") == "linux" and wanted.get("architecture") == arch:
            return descriptor
    raise PullError(f"{name}: no image for linux/{arch} in its index")


def _check_manifest(body: bytes, media_type: str, name: str) -> dict:
    try:
        manifest = json.loads(body)
    except ValueError:
        raise PullError(f"{name}: the manifest is not JSON") from None
    if media_type not in oci.MANIFEST_TYPES or manifest.get("schemaVersion") != 2:
        raise PullError(f"{name}: unsupported manifest type {media_type!r}")
    for layer in manifest.get("layers") or []:
        if layer.get("mediaType") not in LAYER_TYPES:
            raise PullError(f"{name}: unsupported layer type {layer.get('mediaType')!r}")
        oci.digest_hex(layer["digest"])
    return manifest


def _fetch_config(store: ContentStore, repository: Repository, descriptor: dict) -> dict:
    digest = descriptor["digest"]
    if not store.has_blob(digest):
        if descriptor.get("size", 0) > MAX_CONFIG:
            raise PullError(f"image config {digest} is larger than {MAX_CONFIG} bytes")
        with repository.open_blob(digest) as response:
            store.put_blob(response.read(MAX_CONFIG + 1), expected=digest)
    return store.read_json_blob(digest)


def _fetch_layers(store, repository, layers: list[dict], diff_ids: list[str],
                  progress: Progress) -> None:
    chain = oci.chain_ids(diff_ids)
    for layer in layers:
        progress.add(layer["digest"], layer.get("size", 0))
    with ThreadPoolExecutor(PARALLEL_LAYERS, thread_name_prefix="pull") as pool:
        futures = [pool.submit(_fetch_layer, store, repository, layer, diff_id, chain_id,
                               progress)
                   for layer, diff_id, chain_id in zip(layers, diff_ids, chain, strict=True)]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:
            if future.done() and future.exception():
                raise future.exception()


def _fetch_layer(store, repository, layer: dict, diff_id: str, chain_id: str,
                 progress: Progress) -> None:
    digest = layer["digest"]
    if store.has_layer(chain_id) and store.has_blob(digest):
        progress.set_state(digest, EXISTS)
        return
    if not store.has_blob(digest):
        progress.set_state(digest, DOWNLOADING)
        with repository.open_blob(digest) as response:
            store.put_blob_stream(response, digest, lambda n: progress.advance(digest, n))
    progress.set_state(digest, EXTRACTING)
    store.unpack_layer(digest, diff_id, chain_id)
    progress.set_state(digest, DONE)
