"""Container pages: the live list with bulk actions, the detail page, the create form.

Every action calls ``apps.containers.services`` exactly as the API does,
after the same role check (``access.require_act``).
"""

from __future__ import annotations

import shlex

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.audit import services as audit
from apps.containers import execs, services
from apps.containers import options as container_options
from apps.containers.choices import LOGGING_STATES, STATS_STATES
from apps.dashboard import access
from apps.dashboard.feedback import attempt
from apps.dashboard.forms import ContainerForm
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.networks.models import ContainerNetwork
from apps.networks.services import published_ports
from apps.teams.choices import ACTING_ROLES
from apps.teams.models import Team
from apps.teams.services import is_site_admin, teams_of
from berth.errors import ServiceError

# Rows per page: rendering is what costs, so a page stays fast however many containers exist.
PAGE_SIZE = 50
# What a row shows; the JSON columns (command, env, options, health...) stay in the database.
ROW_FIELDS = ("id", "name", "state", "exit_code", "error", "image_reference", "created_at",
              "team", "team__name", "host", "host__name")
# Actions a page may ask for, with the service that does each (and its past tense).
ACTIONS = {
    "start": (services.start_container, "start requested"),
    "stop": (services.stop_container, "stop requested"),
    "restart": (services.restart_container, "restart requested"),
    "kill": (services.kill_container, "killed"),
    "pause": (services.pause_container, "pause requested"),
    "unpause": (services.unpause_container, "unpause requested"),
    "remove": (services.remove_container, "removal requested"),
    "force-remove": (lambda c: services.remove_container(c, force=True), "removal requested"),
}
ORDER = ("running", "paused", "restarting", "pending", "created", "exited", "removing", "unknown")


@require_safe
@login_required
def container_list(request):
    rows = access.containers_of(request.user)
    state = request.GET.get("state", "")
    query = request.GET.get("q", "").strip()
    team = request.GET.get("team", "")
    if state:
        rows = rows.filter(state=state)
    if team:
        rows = rows.filter(team__slug=team)
    if query:
        rows = rows.filter(Q(name__icontains=query) | Q(image_reference__icontains=query))
    # Newest first; the id breaks ties so no row falls between two pages.
    rows = rows.only(*ROW_FIELDS).order_by("-created_at", "-id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    containers = list(page.object_list)
    context = {
        "containers": containers,
        "page": page,
        # Creation times this page spans, for the live list to leave out rows of other pages.
        "newest": containers[0].created_at.isoformat() if page.has_previous() else "",
        "oldest": containers[-1].created_at.isoformat() if page.has_next() else "",
        "state": state,
        "q": query,
        "team": team,
        "states": ORDER,
        "acting": access.acting_team_ids(request.user),
        "actions": [name for name in ACTIONS if name != "force-remove"],
        "teams": access.visible_teams(request.user),
    }
    return render(request, "dashboard/containers.html", context)


@require_safe
@login_required
def container_row(request, container_id: str):
    """One table row, re-fetched by the list when a state event for it arrives.

    ``newest``/``oldest`` are the creation times the asking page spans: a container
    created outside them belongs on another page, so the answer is 204 and no row.
    """
    try:
        newest, oldest = (_time_param(request, name) for name in ("newest", "oldest"))
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    rows = access.containers_of(request.user).only(*ROW_FIELDS)
    container = get_object_or_404(rows, pk=container_id)
    created = container.created_at
    if (newest and created > newest) or (oldest and created < oldest):
        return HttpResponse(status=204)
    context = {"c": container, "acting": access.acting_team_ids(request.user)}
    return render(request, "dashboard/_container_row.html", context)


def _time_param(request, name: str):
    text = request.GET.get(name, "")
    if not text:
        return None
    try:
        moment = parse_datetime(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{name} must be an ISO 8601 time with its offset, not {text!r}")
    return moment


@require_safe
@login_required
def container_detail(request, container_id: str):
    container = get_object_or_404(access.containers_of(request.user), pk=container_id)
    options = {**container_options.DEFAULTS, **(container.options or {})}
    addresses = ContainerNetwork.objects.filter(pk=container.pk).first()
    context = {
        "c": container,
        "options": sorted(options.items()),
        "options_map": options,
        # What the agent bound (ephemeral host ports filled in), else what was asked.
        "ports": published_ports(container) or options.get("ports") or [],
        "networks": sorted((addresses.networks if addresses else {}).items()),
        # Who did what to it, for those who may read the audit log (team owners, admins).
        "events": audit.visible_to(request.user).filter(object_id=container.id)[:50],
        "can_act": container.team_id in access.acting_team_ids(request.user),
        "logging": container.state in LOGGING_STATES,
        "has_stats": container.state in STATS_STATES,
    }
    return render(request, "dashboard/container_detail.html", context)


@require_POST
@login_required
def container_action(request, container_id: str, action: str):
    container = get_object_or_404(access.containers_of(request.user), pk=container_id)
    access.require_act(request.user, container.team)
    if action not in ACTIONS:
        messages.error(request, f"unknown action {action!r}")
        return redirect("dashboard:container", container_id=container.id)
    call, done = ACTIONS[action]
    ok = attempt(request, lambda: call(container), f"{container.name}: {done}")
    if ok and action in ("remove", "force-remove"):
        return redirect("dashboard:containers")
    return redirect("dashboard:container", container_id=container.id)


@require_POST
@login_required
def container_rename(request, container_id: str):
    container = get_object_or_404(access.containers_of(request.user), pk=container_id)
    access.require_act(request.user, container.team)
    name = request.POST.get("name", "").strip()
    attempt(request, lambda: services.rename_container(container, name), f"renamed to {name}")
    return redirect("dashboard:container", container_id=container.id)


@require_POST
@login_required
def bulk_action(request):
    """The same action on every selected container; each outcome is reported."""
    action = request.POST.get("action", "")
    if action not in ACTIONS:
        messages.error(request, f"choose an action, not {action!r}")
        return redirect("dashboard:containers")
    call, done = ACTIONS[action]
    ids = request.POST.getlist("ids")
    rows = access.containers_of(request.user).filter(pk__in=ids)
    if not ids:
        messages.error(request, "select at least one container")
    acting = access.acting_team_ids(request.user)
    for container in rows:
        if container.team_id not in acting:
            messages.error(request, f"{container.name}: your role only allows reading")
            continue
        attempt(request, lambda c=container: call(c), f"{container.name}: {done}")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = "dashboard:containers"  # never bounce to another site
    return redirect(back)


@require_http_methods(["GET", "POST"])
@login_required
def container_create(request):
    teams = Team.objects.all() if is_site_admin(request.user) else teams_of(
        request.user, ACTING_ROLES
    )
    hosts = Host.objects.filter(status=HostStatus.ONLINE)
    kwargs = {"teams": teams, "hosts": hosts, "supported": _supported_create_fields()}
    if not teams.exists():
        messages.error(request, "Your role in your teams only allows reading.")
        return redirect("dashboard:containers")
    form = ContainerForm(request.POST or None, **kwargs)
    if request.method == "POST" and form.is_valid():
        try:
            container = services.create_container(request.user, form.as_request())
        except ServiceError as exc:
            form.show_error(exc.field, exc.message)
        else:
            messages.success(request, f"{container.name} created")
            return redirect("dashboard:container", container_id=container.id)
    images = sorted(set(access.images_of(request.user).values_list("reference", flat=True)))
    return render(request, "dashboard/container_create.html", {"form": form, "images": images})


def _supported_create_fields() -> frozenset[str]:
    """Create options the services take today (ports, volumes, networks come with their apps)."""
    return frozenset(container_options.PARSERS) | {"name", "image", "command", "env"}


@require_POST
@login_required
def container_exec(request, container_id: str):
    """Start a terminal session (an exec with a tty) for the page's xterm; JSON in reply."""
    container = get_object_or_404(access.containers_of(request.user), pk=container_id)
    try:
        command = shlex.split(request.POST.get("command") or "sh")
        session = execs.run_exec(
            request.user, container, {"command": command, "tty": True, "stdin": True}
        )
    except ValueError as exc:
        return JsonResponse({"error": {"message": f"cannot split the command: {exc}"}}, status=400)
    except ServiceError as exc:
        body = {"error": {"code": exc.code, "message": exc.message, "field": exc.field}}
        return JsonResponse(body, status=exc.status)
    return JsonResponse({"id": session.id}, status=201)

