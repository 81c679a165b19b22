"""Errors as dockerd answers them: ``{"message": ...}`` with its status codes."""

from __future__ import annotations

from berth.errors import ServiceError


class DockerError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def no_such_container(name: str) -> DockerError:
    return DockerError(404, f"No such container: {name}")


def no_such_image(name: str) -> DockerError:
    # docker-py raises ImageNotFound (and containers.run pulls) only on this wording.
    return DockerError(404, f"No such image: {name}")


def from_service_error(exc: ServiceError) -> DockerError:
    """Every Berth ServiceError keeps its status (400, 403, 404, 409, 410, 413, 502, 503)."""
    return DockerError(exc.status, exc.message)
