"""Server-rendered pages: the overview and hosts (containers, images and accounts have
modules of their own).

Rows are restricted with the same ``restrict_to_teams`` helper the API uses,
so a page can never show more than the API would.
"""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.db.models import Count, Q
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from apps.audit import services as audit
from apps.containers.choices import State
from apps.dashboard import access
from apps.hosts.choices import HostStatus
from apps.hosts.models import Host
from apps.teams.services import teams_of


@require_safe
@login_required
def overview(request):
    by_state = dict(
        access.containers_of(request.user).values_list("state").annotate(n=Count("pk")).order_by()
    )
    context = {
        "hosts_online": Host.objects.filter(status=HostStatus.ONLINE).count(),
        "hosts_total": Host.objects.count(),
        "by_state": sorted(by_state.items()),
        "containers_total": sum(by_state.values()),
        "teams": teams_of(request.user),
        "recent": access.containers_of(request.user)[:10],
        "operations": access.operations_of(request.user)[:8],
        "events": audit.visible_to(request.user)[:8],
        "running": by_state.get("running", 0),
        "stopped": by_state.get("exited", 0) + by_state.get("created", 0),
    }
    return render(request, "dashboard/overview.html", context)


@require_safe
@login_required
def hosts(request):
    rows = Host.objects.annotate(
        n_containers=Count("containers"),
        n_running=Count("containers", filter=Q(containers__state=State.RUNNING)),
    )
    return render(request, "dashboard/hosts.html", {"hosts": rows})


@require_safe
@login_required
def api_docs(request):
    return render(request, "dashboard/api_docs.html")


@never_cache
@require_safe
def healthz(request):
    """Liveness for load balancers: no auth, but it does prove the database answers."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return HttpResponse("database unavailable\n", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")
