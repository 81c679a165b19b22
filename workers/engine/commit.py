"""A container's writable layer as a new image (`docker commit`).

The layer tar is written from `upper/` with overlay whiteouts turned back
into OCI ones (`.wh.<name>`, and `.wh..wh..opq` in an opaque directory),
stored gzip-compressed, and unpacked into the store by the same safe
extractor as any pulled layer. The image config is the parent's, with the
container's command, environment, working directory and user (as Docker
commits them), then the requested changes, a history entry and the author.
"""

import copy
import gzip
import hashlib
import json
import os
import stat
import tarfile
import tempfile
import time
from pathlib import Path

from . import oci
from .changes import OPAQUE_XATTR, ChangesError, InvalidChange, walk_upper
from .fscopy import exact_reader
from .reference import normalize_reference
from .runtime import _merge_env
from .store import ContentStore, ImageRecord, StoreError
from .unpack import OPAQUE_MARKER, WHITEOUT_PREFIX

CHUNK = 1 << 20
CHANGE_KEYS = {"Cmd": list, "Entrypoint": list, "Env": list, "Labels": dict,
               "WorkingDir": str, "User": str, "ExposedPorts": dict, "Volumes": dict,
               "StopSignal": str}
MERGED_KEYS = ("Labels", "ExposedPorts", "Volumes")

__all__ = ["ChangesError", "InvalidChange", "OPAQUE_XATTR", "commit", "layer_tar"]


def commit(store: ContentStore, container_dir: Path, reference: str | None = None,
           changes: dict | None = None, author: str = "", comment: str = "") -> ImageRecord:
    """Store the container's writable layer as a new image on top of its own image."""
    config = json.loads((container_dir / "config.json").read_text())
    try:
        parent = store.resolve(config["image_id"])
    except StoreError:
        raise ChangesError("the container's image is no longer on this host; "
                           "it cannot be committed") from None
    target = _reference(reference)
    layer, diff_id = _store_layer(store, Path(config["upperdir"]))
    store.unpack_layer(layer["digest"], diff_id, _chain_after(store, parent, diff_id))
    image_config = _image_config(store.read_json_blob(parent.image_id), config,
                                 _checked(changes or {}), diff_id, author, comment)
    config_bytes = oci.canonical_json(image_config)
    config_digest = store.put_blob(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": oci.MEDIA_MANIFEST,
                "config": {"mediaType": oci.MEDIA_CONFIG, "digest": config_digest,
                           "size": len(config_bytes)},
                "layers": [*parent.layers, layer]}
    manifest_digest = store.put_blob(oci.canonical_json(manifest))
    return store.add_image(target or config_digest, manifest_digest)


def _reference(reference: str | None) -> str | None:
    if not reference:
        return None
    try:
        return normalize_reference(reference)
    except ValueError as exc:
        raise InvalidChange(str(exc)) from None


def _checked(changes: dict) -> dict:
    for key, value in changes.items():
        kind = CHANGE_KEYS.get(key)
        if kind is None:
            raise InvalidChange(f"unsupported config change {key!r}; use one of "
                               f"{', '.join(sorted(CHANGE_KEYS))}")
        if value is not None and not isinstance(value, kind):
            raise InvalidChange(f"config change {key} must be a {kind.__name__}")
    return changes


# the layer
def _store_layer(store: ContentStore, upper: Path) -> tuple[dict, str]:
    """Write, store and unpack the layer; its descriptor and DiffID."""
    diff_hash, blob_hash = hashlib.sha256(), hashlib.sha256()
    with tempfile.TemporaryFile(dir=store.root, prefix="tmp-") as spool:
        blob = _Hashing(spool, blob_hash)
        with gzip.GzipFile(fileobj=blob, mode="wb", mtime=0) as compressed:
            layer_tar(upper, _Hashing(compressed, diff_hash))
        size = spool.tell()
        spool.seek(0)
        digest = "sha256:" + blob_hash.hexdigest()
        store.put_blob_stream(spool, digest)
    diff_id = "sha256:" + diff_hash.hexdigest()
    return {"mediaType": oci.MEDIA_LAYER_GZIP, "digest": digest, "size": size}, diff_id


def _chain_after(store: ContentStore, parent: ImageRecord, diff_id: str) -> str:
    return oci.chain_ids([*_parent_diff_ids(store, parent), diff_id])[-1]


def _parent_diff_ids(store: ContentStore, parent: ImageRecord) -> list[str]:
    return store.read_json_blob(parent.image_id)["rootfs"]["diff_ids"]


def layer_tar(upper: Path, out) -> None:
    """The writable layer as an OCI layer tar stream, written to `out`."""
    hardlinks: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as archive:
        for entry in walk_upper(upper):
            name = "/".join(entry.parts)
            if entry.whiteout:
                parent = "/".join(entry.parts[:-1])
                archive.addfile(_whiteout_info(parent, WHITEOUT_PREFIX + entry.name))
                continue
            _add_entry(archive, entry, name, hardlinks)
            if entry.opaque:
                archive.addfile(_whiteout_info(name, OPAQUE_MARKER))


def _whiteout_info(directory: str, name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(f"{directory}/{name}" if directory else name)
    info.mode = 0o644
    return info


def _add_entry(archive: tarfile.TarFile, entry, name: str,
               hardlinks: dict[tuple[int, int], str]) -> None:
    info = entry.info
    member = tarfile.TarInfo(name)
    member.mode, member.uid, member.gid = stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid
    member.mtime = info.st_mtime
    kind = stat.S_IFMT(info.st_mode)
    if kind == stat.S_IFDIR:
        member.type = tarfile.DIRTYPE
        archive.addfile(member)
    elif kind == stat.S_IFLNK:
        member.type = tarfile.SYMTYPE
        member.linkname = os.readlink(entry.name, dir_fd=entry.parent_fd)
        archive.addfile(member)
    elif kind == stat.S_IFREG:
        _add_file(archive, entry, member, hardlinks)
    elif kind == stat.S_IFIFO:
        member.type = tarfile.FIFOTYPE
        archive.addfile(member)
    # Device nodes are left out: no layer may carry one (unpack.py skips them too).


def _add_file(archive: tarfile.TarFile, entry, member: tarfile.TarInfo,
              hardlinks: dict[tuple[int, int], str]) -> None:
    info = entry.info
    key = (info.st_dev, info.st_ino)
    if info.st_nlink > 1 and key in hardlinks:
        member.type, member.linkname = tarfile.LNKTYPE, hardlinks[key]
        archive.addfile(member)
        return
    fd = os.open(entry.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 dir_fd=entry.parent_fd)
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != key:
            return  # replaced by a running container meanwhile
        if info.st_nlink > 1:
            hardlinks[key] = member.name
        member.size = opened.st_size
        archive.addfile(member, exact_reader(fd, opened.st_size))
    finally:
        os.close(fd)


class _Hashing:
    def __init__(self, inner, hasher):
        self.inner, self.hasher = inner, hasher

    def write(self, data) -> int:
        self.hasher.update(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()


# the config
def _image_config(parent: dict, container: dict, changes: dict, diff_id: str, author: str,
                  comment: str) -> dict:
    image = copy.deepcopy(parent)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    settings = image.setdefault("config", {})
    settings.update(_container_settings(settings, container))
    for key, value in changes.items():
        if key in MERGED_KEYS and value is not None:
            settings[key] = {**(settings.get(key) or {}), **value}
        elif key == "Env" and value is not None:
            settings["Env"] = _merge_env(settings.get("Env") or [], value)
        else:
            settings[key] = value
    image["created"] = created
    if author:
        image["author"] = author
    image.setdefault("rootfs", {"type": "layers", "diff_ids": []})["diff_ids"].append(diff_id)
    step = {"created": created, "created_by": " ".join(container.get("args") or [])}
    if author:
        step["author"] = author
    if comment:
        step["comment"] = comment
    image.setdefault("history", []).append(step)
    return image


def _container_settings(image: dict, container: dict) -> dict:
    """What the container ran with, as image settings: the command split back into the
    image's entrypoint and a Cmd when it still starts with that entrypoint."""
    args = list(container.get("args") or [])
    entrypoint = list(image.get("Entrypoint") or [])
    settings = {"Env": list(container.get("env") or []),
                "User": container.get("user") or ""}
    if entrypoint and args[:len(entrypoint)] == entrypoint:
        settings["Cmd"] = args[len(entrypoint):]
    else:
        settings.update(Entrypoint=None, Cmd=args)
    cwd = container.get("cwd") or ""
    settings["WorkingDir"] = "" if cwd == "/" and not image.get("WorkingDir") else cwd
    return settings
