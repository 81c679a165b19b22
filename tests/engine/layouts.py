"""Builds OCI image layouts by hand, independently of Berth's own saver."""

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes | str], symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
        for name, target in (symlinks or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


class Layout:
    def __init__(self, root: Path):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.manifests: list[dict] = []

    def blob(self, data: bytes) -> str:
        digest = sha(data)
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(data)
        return digest

    def image(self, tars: list[bytes], compress: bool = True, architecture: str = "amd64",
              cmd: list[str] | None = None) -> tuple[dict, bytes]:
        layers = []
        for tar in tars:
            data = gzip.compress(tar, mtime=0) if compress else tar
            media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
            layers.append({"mediaType": media, "digest": self.blob(data), "size": len(data)})
        config = json.dumps({
            "architecture": architecture, "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": cmd or ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in tars]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(tars))]}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.blob(config), "size": len(config)},
            "layers": layers}).encode()
        descriptor = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "digest": self.blob(manifest), "size": len(manifest),
                      "platform": {"os": "linux", "architecture": architecture}}
        return descriptor, manifest

    def tag(self, descriptor: dict, name: str) -> None:
        entry = dict(descriptor)
        entry["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.manifests.append(entry)

    def index(self, descriptors: list[dict], name: str) -> str:
        data = json.dumps({"schemaVersion": 2,
                           "mediaType": "application/vnd.oci.image.index.v1+json",
                           "manifests": descriptors}).encode()
        digest = self.blob(data)
        self.manifests.append({"mediaType": "application/vnd.oci.image.index.v1+json",
                               "digest": digest, "size": len(data),
                               "annotations": {"org.opencontainers.image.ref.name": name}})
        return digest

    def write(self) -> Path:
        (self.root / "index.json").write_text(json.dumps(
            {"schemaVersion": 2, "manifests": self.manifests}))
        return self.root
