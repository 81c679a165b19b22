"""Berth's container engine: plain Python, no Django.

Layers, each with one job: `store` (content-addressed blobs, unpacked layers,
image records) → `runtime` (container directories, start/stop/remove) →
`shim` (the per-container supervisor that sets up namespaces and captures logs).
"""
