"""``GET /api/events/``: the live state changes of the caller's teams as Server-Sent Events.

The same groups the WebSocket consumer joins (``TEAM_GROUPS``), fed by the one
sender ``berth.events.publish``, so scripts and browsers see the same events.
Access is checked once, when the stream opens: ``?team=<slug>`` (repeatable)
must name teams the caller belongs to (site admins: any team); without it the
stream carries every team of the caller (site admins: the first 100 teams).
Each event's SSE ``event:`` is its ``type`` (``container.state``,
``operation.state``, …), ``data:`` its JSON.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from channels.layers import get_channel_layer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers
from rest_framework.views import APIView

from apps.containers.api.streams import EventStreamRenderer, event_stream_response, sse
from apps.containers.consumers import TEAM_GROUPS
from apps.teams.models import Team
from apps.teams.services import is_site_admin, teams_of
from berth.api import JsonErrorsMixin
from berth.errors import InvalidInput, NotFound, ServiceUnavailable

KEEPALIVE_SECONDS = 15.0
MAX_TEAMS = 100


def subscribed_teams(user, slugs: list[str]) -> list[Team]:
    visible = Team.objects.all() if is_site_admin(user) else teams_of(user)
    if not slugs:
        return list(visible.order_by("name")[:MAX_TEAMS])
    if len(slugs) > MAX_TEAMS:
        raise InvalidInput(f"at most {MAX_TEAMS} teams per stream", field="team")
    found = {team.slug: team for team in visible.filter(slug__in=slugs)}
    missing = sorted(set(slugs) - found.keys())
    if missing:
        # Same answer for "does not exist" and "not yours": a stream confirms nothing.
        raise NotFound(f"unknown team {missing[0]!r}", field="team")
    return [found[slug] for slug in sorted(found)]


async def team_events(
    teams: list[Team], keepalive: float = KEEPALIVE_SECONDS
) -> AsyncIterator[bytes]:
    layer = get_channel_layer()
    channel = await layer.new_channel()
    groups = [group_of(team.pk) for team in teams for group_of in TEAM_GROUPS]
    for group in groups:
        await layer.group_add(group, channel)
    try:
        yield sse({"teams": [team.slug for team in teams]}, event="subscribed")
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), keepalive)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            event = message.get("event")
            if isinstance(event, dict):
                yield sse(event, event=str(event.get("type") or "message"))
    finally:
        for group in groups:
            await layer.group_discard(group, channel)


class EventsView(JsonErrorsMixin, APIView):
    renderer_classes = [EventStreamRenderer, renderers.JSONRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter("team", str, many=True, description="team slug; repeat for several")
        ],
        responses={
            (200, "text/event-stream"): OpenApiResponse(
                OpenApiTypes.STR, description="Server-Sent Events, until the client goes"
            )
        },
    )
    def get(self, request):
        teams = subscribed_teams(request.user, request.query_params.getlist("team"))
        if get_channel_layer() is None:
            raise ServiceUnavailable("live events need a channel layer (Redis)")
        return event_stream_response(team_events(teams))
