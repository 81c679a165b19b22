"""Volumes, networks and the audit log: pages over apps.volumes, apps.networks, apps.audit.

Changes go through those apps' services after the same role check as the API.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from apps.audit import services as audit
from apps.dashboard import access
from apps.dashboard.feedback import attempt
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.networks import services as networks
from apps.networks.models import Network
from apps.teams.services import restrict_to_teams
from apps.volumes import services as volumes
from apps.volumes.models import Volume
from berth.errors import ServiceError

MAX_ROWS = 500


def _acting_context(user) -> dict:
    acting = access.acting_team_ids(user)
    return {
        "acting": acting,
        "teams": access.visible_teams(user).filter(pk__in=acting),
        "hosts": Host.objects.filter(status=HostStatus.ONLINE),
    }


def _form(request, *names: str) -> dict:
    """The named fields that were filled in (empty ones are left to the service's defaults)."""
    filled = {name: request.POST.get(name, "").strip() for name in names}
    return {name: value for name, value in filled.items() if value}


@require_safe
@login_required
def volume_list(request):
    rows = restrict_to_teams(Volume.objects.select_related("team", "host"), request.user)
    context = {"volumes": rows[:MAX_ROWS], **_acting_context(request.user)}
    return render(request, "dashboard/volumes.html", context)


@require_POST
@login_required
def volume_create(request):
    data = _form(request, "name", "team", "host")
    attempt(request, lambda: volumes.create_volume(request.user, data),
            f"volume {data.get('name', '')} created")
    return redirect("dashboard:volumes")


@require_POST
@login_required
def volume_remove(request, volume_id: int):
    rows = restrict_to_teams(Volume.objects.select_related("team", "host"), request.user)
    volume = get_object_or_404(rows, pk=volume_id)
    access.require_act(request.user, volume.team)
    attempt(request, lambda: volumes.remove_volume(volume), f"volume {volume.name} removed")
    return redirect("dashboard:volumes")


@require_safe
@login_required
def network_list(request):
    rows = list(
        restrict_to_teams(Network.objects.select_related("team", "host"), request.user)[:MAX_ROWS]
    )
    for network in rows:
        network.members = [member.container for member in networks.attached(network)]
    context = {"networks": rows, **_acting_context(request.user)}
    return render(request, "dashboard/networks.html", context)


@require_POST
@login_required
def network_plug(request, network_id: int, verb: str):
    """Connect a container of the network's team to it, or disconnect one."""
    rows = restrict_to_teams(Network.objects.select_related("team", "host"), request.user)
    network = get_object_or_404(rows, pk=network_id)
    access.require_act(request.user, network.team)
    container = request.POST.get("container", "").strip()
    if verb == "connect":
        data = {"container": container, **_form(request, "ip")}
        attempt(request, lambda: networks.connect(network, data),
                f"{container} connected to {network.name}")
    else:
        attempt(request, lambda: networks.disconnect(network, {"container": container}),
                f"{container} disconnected from {network.name}")
    return redirect("dashboard:networks")


@require_POST
@login_required
def network_create(request):
    data = _form(request, "name", "team", "host", "subnet", "gateway")
    data["internal"] = request.POST.get("internal") == "1"
    attempt(request, lambda: networks.create_network(request.user, data),
            f"network {data.get('name', '')} created")
    return redirect("dashboard:networks")


@require_POST
@login_required
def network_remove(request, network_id: int):
    rows = restrict_to_teams(Network.objects.select_related("team", "host"), request.user)
    network = get_object_or_404(rows, pk=network_id)
    access.require_act(request.user, network.team)
    attempt(request, lambda: networks.remove_network(network), f"network {network.name} removed")
    return redirect("dashboard:networks")


@require_safe
@login_required
def audit_list(request):
    """Owners see their teams' events, site admins all (the same rule as the API)."""
    events = audit.visible_to(request.user)
    problem = None
    try:
        events = audit.filtered(events, request.GET)
    except ServiceError as exc:
        problem = exc.message
    query = request.GET.urlencode()
    context = {"events": events[:MAX_ROWS], "params": request.GET, "problem": problem,
               "query": query}
    return render(request, "dashboard/audit.html", context)
