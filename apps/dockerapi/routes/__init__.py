"""Importing this package registers every Docker API route (``apps.dockerapi.router.route``)."""

from apps.dockerapi.routes import (
    containers,
    execs,
    files,
    images,
    networks,
    streams,
    system,
    volumes,
)

__all__ = ["containers", "execs", "files", "images", "networks", "streams", "system", "volumes"]
