from workers.engine.bootstrap import BUSYBOX_REFERENCE

from .layouts import layer_tar


def test_gc_keeps_what_images_use_and_frees_the_rest(store, busybox):
    store.tag("docker.io/library/copy:1", busybox.digest)
    stray = store.put_blob(layer_tar({"x": "unused"}))
    freed = store.collect_garbage()
    assert freed > 0 and not store.has_blob(stray)
    assert store.has_layer(busybox.chain_ids[0])
    store.untag(BUSYBOX_REFERENCE)
    store.collect_garbage()
    assert store.has_layer(busybox.chain_ids[0])  # still used by copy:1
    store.untag("docker.io/library/copy:1")
    store.collect_garbage()
    assert not store.has_layer(busybox.chain_ids[0])
    assert list(store.blobs.iterdir()) == []


def test_gc_keeps_layers_pinned_by_containers(store, busybox):
    store.untag(BUSYBOX_REFERENCE)
    store.collect_garbage(pinned_layers={busybox.chain_ids[0].removeprefix("sha256:")})
    assert store.has_layer(busybox.chain_ids[0])


def test_resolve_by_short_id(store, busybox):
    assert store.resolve(busybox.image_id[7:19]).image_id == busybox.image_id
    assert store.resolve(busybox.image_id).image_id == busybox.image_id
