"""Images (pull, push, tag, remove), operations with live progress, and registries.

Long work (pull, push) starts an Operation and the page follows it over the
events WebSocket; quick actions answer at once. All of it through
``apps.images.services``, as the API does.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.dashboard import access
from apps.dashboard.feedback import attempt
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.images import services
from apps.operations.api.streams import public_base_url
from apps.teams.services import can_act_somewhere
from berth.errors import ServiceError

MAX_ROWS = 500


@require_safe
@login_required
def image_list(request):
    context = {
        "images": access.images_of(request.user)[:MAX_ROWS],
        "acting": access.acting_team_ids(request.user),
        "can_pull": can_act_somewhere(request.user),
        "hosts": Host.objects.filter(status=HostStatus.ONLINE),
        "teams": access.visible_teams(request.user).filter(
            pk__in=access.acting_team_ids(request.user)
        ),
    }
    return render(request, "dashboard/images.html", context)


@require_POST
@login_required
def image_pull(request):
    data = {key: request.POST.get(key, "").strip() for key in ("reference", "host", "team")}
    try:
        operation = services.pull_image(request.user, data)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:images")
    return redirect("dashboard:operation", operation_id=operation.id)


def _image_for_action(request, image_id: int):
    """The image, if the user may act on it: its team's operators, or anyone who may act
    somewhere for a shared system image (the service picks the team)."""
    image = get_object_or_404(access.images_of(request.user), pk=image_id)
    if image.team_id is not None:
        access.require_act(request.user, image.team)
    elif not can_act_somewhere(request.user):
        access.require_act(request.user, None)
    return image


@require_POST
@login_required
def image_tag(request, image_id: int):
    image = _image_for_action(request, image_id)
    reference = request.POST.get("reference", "").strip()
    attempt(request, lambda: services.tag_image(request.user, image, {"reference": reference}),
            f"tagged {reference}")
    return redirect("dashboard:images")


@require_POST
@login_required
def image_push(request, image_id: int):
    image = _image_for_action(request, image_id)
    data = {"reference": request.POST.get("reference", "").strip()}
    try:
        operation = services.push_image(request.user, image, data)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:images")
    return redirect("dashboard:operation", operation_id=operation.id)


@require_POST
@login_required
def image_save(request, image_id: int):
    """Save the image into an archive; its operation page offers the download."""
    image = _image_for_action(request, image_id)
    data = {"references": [image.reference], "host": image.host.name,
            "format": request.POST.get("format") or "docker"}
    if image.team_id is not None:
        data["team"] = image.team.slug
    try:
        operation = services.save_images(request.user, data, base_url=public_base_url(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("dashboard:images")
    return redirect("dashboard:operation", operation_id=operation.id)


@require_POST
@login_required
def image_remove(request, image_id: int):
    image = get_object_or_404(access.images_of(request.user), pk=image_id)
    access.require_act(request.user, image.team)
    force = request.POST.get("force") == "1"
    attempt(request, lambda: services.remove_image(image, force=force),
            f"removed {image.reference} from {image.host.name}")
    return redirect("dashboard:images")


@require_safe
@login_required
def operation_list(request):
    rows = access.operations_of(request.user)
    status = request.GET.get("status", "")
    if status:
        rows = rows.filter(status=status)
    operations = list(rows[:MAX_ROWS])
    for operation in operations:
        operation.percent = progress_percent(operation)
    return render(request, "dashboard/operations.html",
                  {"operations": operations, "status": status})


@require_safe
@login_required
def operation_detail(request, operation_id: str):
    operation = get_object_or_404(access.operations_of(request.user), pk=operation_id)
    layers = (operation.progress or {}).get("layers") or {}
    rows = [
        {"digest": digest, **layer, "percent": layer_percent(layer)}
        for digest, layer in layers.items()
        if isinstance(layer, dict)
    ]
    context = {"op": operation, "percent": progress_percent(operation), "layers": rows}
    return render(request, "dashboard/operation_detail.html", context)


def progress_percent(operation) -> int:
    """Whole percent done of an operation (100 once it succeeded)."""
    if operation.status == "succeeded":
        return 100
    progress = operation.progress or {}
    return _percent(progress.get("done"), progress.get("total"))


def layer_percent(layer: dict) -> int:
    if layer.get("state") in ("done", "exists", "mounted"):
        return 100
    return _percent(layer.get("done"), layer.get("total"))


def _percent(done, total) -> int:
    if not isinstance(done, int) or not isinstance(total, int) or total <= 0:
        return 0
    return max(0, min(100, done * 100 // total))


@require_safe
@login_required
def registry_list(request):
    acting = access.acting_team_ids(request.user)
    context = {
        "registries": access.registries_of(request.user),
        "acting": acting,
        "teams": access.visible_teams(request.user).filter(pk__in=acting),
    }
    return render(request, "dashboard/registries.html", context)


@require_POST
@login_required
def registry_create(request):
    data = {key: request.POST.get(key, "").strip()
            for key in ("name", "url", "username", "password", "team")}
    if request.POST.get("insecure") == "1":  # unticked: the service decides by the scheme
        data["insecure"] = True
    mirrors = request.POST.get("mirrors", "").split()
    if mirrors:
        data["mirrors"] = mirrors
    attempt(request, lambda: services.create_registry(request.user, data),
            f"registry {data['name']} added")
    return redirect("dashboard:registries")


@require_POST
@login_required
def registry_update(request, registry_id: int):
    """Change credentials, mirrors or the insecure flag; an empty password keeps the old one."""
    registry = get_object_or_404(access.registries_of(request.user), pk=registry_id)
    access.require_act(request.user, registry.team)
    data = {
        "username": request.POST.get("username", "").strip(),
        "mirrors": request.POST.get("mirrors", "").split(),
    }
    # An http:// registry is always insecure; only an https one can be switched.
    if request.POST.get("insecure") == "1" or registry.url.startswith("https://"):
        data["insecure"] = request.POST.get("insecure") == "1"
    if request.POST.get("password"):
        data["password"] = request.POST["password"]
    attempt(request, lambda: services.update_registry(registry, data),
            f"registry {registry.name} updated")
    return redirect("dashboard:registries")


@require_POST
@login_required
def registry_delete(request, registry_id: int):
    registry = get_object_or_404(access.registries_of(request.user), pk=registry_id)
    access.require_act(request.user, registry.team)
    attempt(request, lambda: services.delete_registry(registry),
            f"registry {registry.name} removed")
    return redirect("dashboard:registries")
