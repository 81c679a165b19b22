"""Bootstrap `busybox:latest` from the host's busybox-static as a real OCI image.

The layer is a deterministic tar (fixed mtimes and owners), so bootstrapping
on two hosts, or twice, gives the same digests.
"""

import io
import struct
import subprocess
import tarfile
from pathlib import Path

from . import oci
from .store import ContentStore, ImageRecord

BUSYBOX_REFERENCE = "docker.io/library/busybox:latest"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
PT_INTERP = 3

_ETC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    "etc/group": "root:x:0:\nnogroup:x:65534:\n",
    "etc/hosts": "",
    "etc/hostname": "",
    "etc/resolv.conf": "",
}
_DIRS = {"bin": 0o755, "dev": 0o755, "etc": 0o755, "proc": 0o555, "sys": 0o555,
         "root": 0o700, "tmp": 0o1777, "home": 0o755, "var": 0o755, "usr": 0o755,
         "usr/bin": 0o755, "usr/sbin": 0o755, "sbin": 0o755}


def find_busybox() -> Path:
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.exists() and _is_static(path):
            return path
    raise FileNotFoundError("busybox-static is not installed (apt-get install busybox-static)")


def _is_static(path: Path) -> bool:
    """True when the ELF has no PT_INTERP: a dynamic busybox would need the host's libc."""
    with open(path, "rb") as handle:
        header = handle.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        phoff, = struct.unpack_from("<Q", header, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        handle.seek(phoff)
        table = handle.read(phentsize * phnum)
    types = (struct.unpack_from("<I", table, i * phentsize)[0] for i in range(phnum))
    return PT_INTERP not in types


def build_layer(busybox: Path) -> bytes:
    applets = subprocess.run([str(busybox), "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, mode in sorted(_DIRS.items()):
            archive.addfile(_entry(name, tarfile.DIRTYPE, mode))
        data = busybox.read_bytes()
        archive.addfile(_entry("bin/busybox", tarfile.REGTYPE, 0o755, size=len(data)),
                        io.BytesIO(data))
        for applet in sorted(set(applets) - {"bin/busybox"}):
            link = _entry(applet, tarfile.SYMTYPE, 0o777)
            link.linkname = "/bin/busybox"
            archive.addfile(link)
        for name, text in sorted(_ETC_FILES.items()):
            content = text.encode()
            archive.addfile(_entry(name, tarfile.REGTYPE, 0o644, size=len(content)),
                            io.BytesIO(content))
    return buffer.getvalue()


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def image_documents(layer: bytes, layer_digest: str) -> tuple[bytes, dict]:
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": EPOCH,
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": EPOCH, "created_by": "berth bootstrap from busybox-static"}],
    }
    config_bytes = oci.canonical_json(config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MEDIA_MANIFEST,
        "config": {"mediaType": oci.MEDIA_CONFIG, "digest": oci.sha256_digest(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": oci.MEDIA_LAYER_TAR, "digest": layer_digest,
                    "size": len(layer)}],
    }
    return config_bytes, manifest


def bootstrap_busybox(store: ContentStore, reference: str = BUSYBOX_REFERENCE,
                      busybox: Path | None = None) -> ImageRecord:
    layer = build_layer(busybox or find_busybox())
    layer_digest = store.put_blob(layer)
    config_bytes, manifest = image_documents(layer, layer_digest)
    store.put_blob(config_bytes)
    manifest_digest = store.put_blob(oci.canonical_json(manifest))
    # Uncompressed layer: its DiffID is its digest, and so is its ChainID.
    store.unpack_layer(layer_digest, layer_digest, layer_digest)
    store.tag(reference, manifest_digest)
    return store.resolve(reference)
