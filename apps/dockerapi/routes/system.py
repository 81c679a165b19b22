"""``/_ping``, ``/version``, ``/info``, ``/system/df`` and ``/events``.

``/_ping`` and ``/version`` answer without a token: the CLI negotiates the
API version before anything else, and docker-py asks ``/version`` before a
caller can add its token header.
"""

from __future__ import annotations

import os
import platform

from django.conf import settings
from django.db.models import Count, Sum

from apps.containers.choices import State
from apps.dockerapi import lookup, shapes
from apps.dockerapi.http import Reply
from apps.dockerapi.router import (
    API_VERSION,
    ENGINE_VERSION,
    MIN_API_VERSION,
    Context,
    call,
    route,
)
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host

GO_VERSION = "go1.24"  # what the Go client expects to see; Berth is Python
BUILD_TIME = "2026-01-01T00:00:00.000000000+00:00"


@route("GET", "/_ping", auth=False)
async def ping(ctx: Context) -> Reply:
    headers = [
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
        ("Builder-Version", "1"),
        ("Swarm", "inactive"),
    ]
    return Reply(200, body=b"OK", content_type="text/plain; charset=utf-8", headers=headers)


@route("GET", "/version", auth=False)
async def version(ctx: Context) -> Reply:
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "berth",
        "GoVersion": GO_VERSION,
        "Os": "linux",
        "Arch": _arch(),
        "KernelVersion": platform.release(),
        "BuildTime": BUILD_TIME,
    }
    return Reply(
        200,
        {
            "Platform": {"Name": "Berth"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": ENGINE_VERSION,
                    "Details": {**details, "Experimental": "false"},
                },
            ],
            "Version": ENGINE_VERSION,
            **details,
            "Experimental": False,
        },
    )


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@route("GET", "/info")
async def info(ctx: Context) -> Reply:
    return Reply(200, await call(_info, ctx.user))


def _info(user) -> dict:
    states = dict(
        lookup.containers_of(user).values_list("state").annotate(n=Count("pk")).order_by()
    )
    total = sum(states.values())
    running = states.get(State.RUNNING, 0) + states.get(State.RESTARTING, 0)
    paused = states.get(State.PAUSED, 0)
    images = lookup.images_of(user).values("image_id").distinct().count()
    hosts = Host.objects.filter(status=HostStatus.ONLINE)
    cpus = hosts.aggregate(n=Sum("cpus"))["n"] or os.cpu_count() or 1
    memory = hosts.aggregate(n=Sum("memory_bytes"))["n"] or 0
    return {
        "ID": "berth",
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": total - running - paused,
        "Images": images,
        "Driver": "overlay",
        "DriverStatus": [["Hosts online", str(hosts.count())]],
        "Plugins": {
            "Volume": ["local"],
            "Network": ["bridge"],
            "Authorization": None,
            "Log": ["json-file"],
        },
        "MemoryLimit": True,
        "SwapLimit": True,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "CPUShares": True,
        "CPUSet": True,
        "PidsLimit": True,
        "IPv4Forwarding": True,
        "Debug": False,
        "NFd": 0,
        "OomKillDisable": False,
        "NGoroutines": 0,
        "SystemTime": _now(),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "1",
        "NEventsListener": 0,
        "KernelVersion": platform.release(),
        "OperatingSystem": "Berth",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": None,
        "NCPU": int(cpus),
        "MemTotal": int(memory),
        "GenericResources": None,
        "DockerRootDir": str(settings.VAR_DIR),
        "HttpProxy": "",
        "HttpsProxy": "",
        "NoProxy": "",
        "Name": "berth",
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": ENGINE_VERSION,
        "Runtimes": {"berth": {"path": "berth"}},
        "DefaultRuntime": "berth",
        "Swarm": {
            "NodeID": "",
            "NodeAddr": "",
            "LocalNodeState": "inactive",
            "ControlAvailable": False,
            "Error": "",
            "RemoteManagers": None,
        },
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "ContainerdCommit": {"ID": ""},
        "RuncCommit": {"ID": ""},
        "InitCommit": {"ID": ""},
        "SecurityOptions": ["name=seccomp,profile=builtin"],
        "Warnings": [],
    }


def _now() -> str:
    from django.utils import timezone

    return shapes.rfc3339(timezone.now())


@route("GET", "/system/df")
async def disk_usage(ctx: Context) -> Reply:
    return Reply(200, await call(_disk_usage, ctx.user))


def _disk_usage(user) -> dict:
    groups: dict[str, list] = {}
    for row in lookup.images_of(user):
        groups.setdefault(row.image_id or row.digest, []).append(row)
    used = {
        image_id
        for image_id in lookup.containers_of(user).values_list("image__image_id", flat=True)
    }
    images = []
    for image_id, rows in groups.items():
        item = shapes.image_summary(rows)
        item["Containers"] = 1 if image_id in used else 0
        images.append(item)
    containers = []
    for container in lookup.containers_of(user):
        item = shapes.summary(container)
        item.update(SizeRw=0, SizeRootFs=container.image.size if container.image else 0)
        containers.append(item)
    return {
        "LayersSize": sum(item["Size"] for item in images),
        "Images": images,
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
    }


@route("POST", "/build/prune")
async def prune_build_cache(ctx: Context) -> Reply:
    """Berth builds no images, so it has no build cache (``docker system prune`` asks)."""
    return Reply(200, {"CachesDeleted": None, "SpaceReclaimed": 0})
