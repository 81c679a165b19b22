"""WebSocket endpoint streaming the events of the user's teams.

Clients send ``{"action": "subscribe", "team": "<slug>"}`` and then receive
that team's container state events (``container.state``) and operation
events (``operation.state``). Access is checked when subscribing (the channel
layer cannot filter per message), so a user only ever joins groups of teams
they belong to; site admins may join any team.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.containers.events import team_group as container_group
from apps.operations.events import team_group as operation_group
from apps.teams.models import Team
from apps.teams.services import is_site_admin, teams_of

# Every event group of one team; subscribing to a team joins all of them.
TEAM_GROUPS = (container_group, operation_group)


@database_sync_to_async
def _team_for(user, slug) -> Team | None:
    if not isinstance(slug, str):
        return None
    teams = Team.objects.all() if is_site_admin(user) else teams_of(user)
    return teams.filter(slug=slug).first()


class ContainerEventsConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.groups_joined: set[str] = set()
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        await self.accept()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", set()):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        action = content.get("action") if isinstance(content, dict) else None
        if action not in ("subscribe", "unsubscribe"):
            await self._error("bad_request", "send {'action': 'subscribe', 'team': '<slug>'}")
            return
        team = await _team_for(self.scope["user"], content.get("team"))
        if team is None:
            await self._error("not_found", f"unknown team {content.get('team')!r}")
            return
        for group_of in TEAM_GROUPS:
            group = group_of(team.pk)
            if action == "subscribe":
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.add(group)
            else:
                await self.channel_layer.group_discard(group, self.channel_name)
                self.groups_joined.discard(group)
        await self.send_json({"type": f"{action}d", "team": team.slug})

    async def container_event(self, message):
        await self.send_json(message["event"])

    async def operation_event(self, message):
        await self.send_json(message["event"])

    async def _error(self, code: str, text: str):
        await self.send_json({"type": "error", "error": {"code": code, "message": text}})
