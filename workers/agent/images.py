"""Image work on this host: the engine's pull, push, archives and store,
wrapped with operation reports and the in-use checks only the host can make."""

import logging
import tempfile
import urllib.request

from workers.engine import archive
from workers.engine.pull import PullError, pull, pull_tags
from workers.engine.push import PushError, push
from workers.engine.reference import normalize_reference
from workers.engine.registry import RegistryError
from workers.engine.store import StoreError

from .reporter import send

log = logging.getLogger("berth.agent")
TRANSFER_TIMEOUT = 300
OPERATION_ERRORS = (PullError, PushError, archive.ArchiveError, StoreError, RegistryError,
                    OSError, ValueError, KeyError)


class ImageInUse(Exception):
    """A container on this host uses the image; the control plane maps this to 409."""


class ImageNotFound(Exception):
    """No such image on this host; the control plane maps this to 404."""


def run_operation(node, operation_id: str, work) -> None:
    """Run `work(on_progress)` and report progress, then the outcome, then the host's images."""
    def on_progress(progress: dict) -> None:
        send("images.operation_progress", operation_id, progress)

    try:
        records = work(on_progress)
    except OPERATION_ERRORS as exc:
        log.warning("operation %s failed: %s", operation_id, exc)
        send("images.operation_finished", operation_id,
             {"ok": False, "error": str(exc), "images": []})
        return
    send("images.operation_finished", operation_id,
         {"ok": True, "error": "", "images": [r.as_report() for r in records]})
    sync(node)


def sync(node) -> None:
    send("images.sync", node.config.host_name,
         [record.as_report() for record in node.store.images()])


def do_pull(node, reference: str, registries: dict):
    return lambda on_progress: [pull(node.store, reference, registries, on_progress)]


def do_pull_tags(node, repository: str, registries: dict, protected: list[str]):
    return lambda on_progress: pull_tags(node.store, repository, registries, on_progress,
                                         frozenset(protected))


def do_push(node, reference: str, registries: dict):
    return lambda on_progress: [push(node.store, reference, registries, on_progress)]


def do_load(node, source: dict, protected: list[str]):
    def work(on_progress):
        with open_transfer(source) as stream:
            return archive.load(node.store, stream, protected=frozenset(protected))
    return work


def do_import(node, source: dict, reference: str, changes: dict):
    def work(on_progress):
        with open_transfer(source) as stream:
            return [archive.import_rootfs(node.store, stream, reference or None, changes)]
    return work


def do_save(node, references: list[str], target: dict, form: str):
    def work(on_progress):
        with tempfile.TemporaryFile(dir=node.store.root) as spool:
            archive.save(node.store, references, spool, form)
            deliver_transfer(target, spool)
        return [node.store.resolve(_normal(ref)) for ref in references]
    return work


def deliver_transfer(target: dict, spool) -> None:
    """PUT the file `spool` (written up to its current position) to a transfer."""
    size = spool.tell()
    spool.seek(0)
    request = urllib.request.Request(target["url"], data=spool, method="PUT", headers={
        "Authorization": f"Transfer {target['token']}",
        "Content-Type": "application/x-tar", "Content-Length": str(size)})
    urllib.request.urlopen(request, timeout=TRANSFER_TIMEOUT).close()  # noqa: S310


def open_transfer(source: dict):
    request = urllib.request.Request(source["url"],
                                     headers={"Authorization": f"Transfer {source['token']}"})
    return urllib.request.urlopen(request, timeout=TRANSFER_TIMEOUT)  # noqa: S310


# quick calls (RPC)
def resolve(node, reference: str):
    try:
        return node.store.resolve(_normal(reference))
    except StoreError as exc:
        raise ImageNotFound(str(exc)) from None


def tag(node, source: str, target: str) -> dict:
    record = resolve(node, source)
    try:
        target = normalize_reference(target)
    except ValueError as exc:
        raise archive.ArchiveError(str(exc)) from None
    node.store.tag(target, record.digest)
    sync(node)
    return {"image": node.store.resolve(target).as_report()}


def inspect(node, reference: str) -> dict:
    record = resolve(node, reference)
    return {"image": record.as_report(), "manifest": node.store.read_json_blob(record.digest),
            "config": node.store.read_json_blob(record.image_id)}


def remove(node, reference: str, force: bool) -> dict:
    record = resolve(node, reference)
    by_id = _normal(reference) not in {r.reference for r in node.store.images()}
    tags = [r.reference for r in node.store.images() if r.image_id == record.image_id]
    doomed = tags if by_id else [record.reference]
    if by_id and len(tags) > 1 and not force:
        raise ImageInUse(f"image {record.image_id[7:19]} is referenced by {len(tags)} tags "
                         f"({', '.join(tags)}): remove them by name, or force")
    last_reference = len(tags) == len(doomed)
    users = node.runtime.containers_using(record.image_id)
    if last_reference and users and not force:
        raise ImageInUse(f"image {record.reference} is used by container(s) "
                         f"{', '.join(u[:12] for u in users)}: remove them first, or force")
    for name in doomed:
        node.store.untag(name)
    deleted = [record.image_id] if last_reference else []
    node.store.collect_garbage(node.runtime.pinned_layers())
    sync(node)
    return {"untagged": doomed, "deleted": deleted}


def prune(node, everything: bool) -> dict:
    in_use = node.runtime.image_ids_in_use()
    deleted = []
    for record in node.store.images():
        dangling = record.reference.startswith("sha256:")
        if record.image_id not in in_use and (everything or dangling):
            node.store.untag(record.reference)
            deleted.append(record.reference)
    reclaimed = node.store.collect_garbage(node.runtime.pinned_layers())
    sync(node)
    return {"deleted": deleted, "reclaimed": reclaimed}


def _normal(reference: str) -> str:
    text = reference.strip()
    if text.startswith("sha256:") or (len(text) >= 4 and all(c in "0123456789abcdef"
                                                            for c in text)):
        return text
    try:
        return normalize_reference(text)
    except ValueError as exc:
        raise ImageNotFound(str(exc)) from None
