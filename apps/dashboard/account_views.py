"""The user's own pages: profile (password), API tokens, and teams with their members."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.accounts import services as accounts
from apps.accounts import totp
from apps.accounts.models import ApiToken
from apps.dashboard import access
from apps.dashboard.feedback import attempt
from apps.teams import services as teams
from apps.teams.choices import Role
from apps.teams.models import Membership
from berth.errors import InvalidInput


@require_http_methods(["GET", "POST"])
@login_required
def profile(request):
    form = PasswordChangeForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        messages.success(request, "password changed")
        return redirect("dashboard:profile")
    memberships = Membership.objects.filter(user=request.user).select_related("team")
    context = {
        "form": form,
        "memberships": memberships,
        "totp_on": totp.has_totp(request.user),
        # Shown once, right after enrolling: the secret for the authenticator app.
        "totp_uri": request.session.pop("totp_uri", None),
    }
    return render(request, "dashboard/profile.html", context)


@require_POST
@login_required
def totp_step(request, step: str):
    """Turn the second factor on (enrol, then confirm with a code) or off (with a code)."""
    code = request.POST.get("code", "").strip()
    if step == "enrol":

        def enrol():
            request.session["totp_uri"] = totp.enrol(request.user)

        attempt(request, enrol, "add the key below to your app, then confirm with a code")
    elif step == "confirm":
        attempt(request, lambda: totp.confirm(request.user, code), "second factor on")
    elif step == "disable":
        attempt(request, lambda: totp.disable(request.user, code), "second factor off")
    else:
        messages.error(request, f"unknown step {step!r}")
    return redirect("dashboard:profile")


@require_safe
@login_required
def token_list(request):
    tokens = ApiToken.objects.filter(user=request.user)
    new_key = request.session.pop("new_token_key", None)
    return render(request, "dashboard/tokens.html", {"tokens": tokens, "new_key": new_key})


@require_POST
@login_required
def token_create(request):
    name = request.POST.get("name", "").strip()[:100]
    read_only = request.POST.get("read_only") == "1"
    days = request.POST.get("expires_days", "").strip()

    def create():
        if days and not days.isdecimal():
            raise InvalidInput("expiry must be a whole number of days", field="expires_days")
        _, key = accounts.create_token(request.user, name=name, read_only=read_only,
                                       expires_days=int(days) if days else None)
        # Shown once, on the next page, never stored in clear.
        request.session["new_token_key"] = key

    attempt(request, create, f"token {name or 'unnamed'} created")
    return redirect("dashboard:tokens")


@require_POST
@login_required
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user)
    accounts.revoke_token(token)
    messages.success(request, f"token {token.prefix}… revoked")
    return redirect("dashboard:tokens")


@require_safe
@login_required
def team_list(request):
    rows = [
        {"team": team, "owner": teams.can_manage(request.user, team),
         "members": team.memberships.all()}
        for team in access.visible_teams(request.user).prefetch_related("memberships__user")
    ]
    return render(request, "dashboard/teams.html", {"rows": rows, "roles": Role.choices})


@require_POST
@login_required
def team_member_set(request, team_id: int):
    """Add a member or change a role (owners and site admins; a team keeps an owner)."""
    team = get_object_or_404(access.visible_teams(request.user), pk=team_id)
    username = request.POST.get("username", "").strip()
    role = request.POST.get("role", Role.VIEWER)
    attempt(request, lambda: teams.set_member(request.user, team, username, role),
            f"{username} is now {role} of {team.name}")
    return redirect("dashboard:teams")


@require_POST
@login_required
def team_member_remove(request, team_id: int):
    team = get_object_or_404(access.visible_teams(request.user), pk=team_id)
    username = request.POST.get("username", "")
    attempt(request, lambda: teams.remove_member(request.user, team, username),
            f"{username} left {team.name}")
    return redirect("dashboard:teams")
