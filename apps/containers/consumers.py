"""WebSocket endpoint streaming the events of the user's teams.

Clients send ``{"action": "subscribe", "team": "<slug>"}`` and then receive
that team's container state events (``container.state``) and operation
events (``operation.state``). Access is checked when subscribing (the channel
layer cannot filter per message), so a user only ever joins groups of teams
they belong to; site admins may join any team.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer

from apps.containers import logs, relay
from apps.containers.events import team_group as container_group
from apps.containers.models import Exec
from apps.operations.events import team_group as operation_group
from apps.teams.models import Team
from apps.teams.services import can_act, is_site_admin, restrict_to_teams, teams_of
from berth.errors import InvalidInput, ServiceUnavailable

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


@database_sync_to_async
def _exec_for(user, exec_id) -> Exec | None:
    rows = restrict_to_teams(Exec.objects.select_related("container__team"), user,
                             field="container__team")
    found = rows.filter(pk=exec_id).first()
    return found if found is not None and can_act(user, found.container.team) else None


class ExecTerminalConsumer(AsyncWebsocketConsumer):
    """An exec's stdio over a WebSocket (the dashboard's terminal).

    Binary frames from the client are input; text frames are JSON commands
    (``{"type": "resize", "rows", "columns"}``, ``{"type": "input", "data"}``).
    Output goes out as binary frames; the end as ``{"type": "exit", "exit_code"}``.
    Only operators, owners and site admins of the container's team may connect:
    checked once here, when the client subscribes, as for event groups.
    """

    async def connect(self):
        self.pump = None
        self.input = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        exec_id = self.scope["url_route"]["kwargs"]["exec_id"]
        found = await _exec_for(user, exec_id)
        if found is None:
            await self.close(code=4404)
            return
        await self.accept()
        self.input = relay.AsyncInput(found.id)
        self.pump = asyncio.create_task(self._pump(found.id, _after(self.scope)))

    async def _pump(self, exec_id: str, after: str) -> None:
        try:
            await self._relay_output(exec_id, after)
        except ServiceUnavailable as exc:
            await self.send(text_data=json.dumps({"type": "error", "message": exc.message}))
            await self.close(code=1011)

    async def _relay_output(self, exec_id: str, after: str) -> None:
        async for batch in relay.follow_async(exec_id, after):
            data = b"".join(entry.data for entry in batch if entry.stream != "exit")
            if data:
                await self.send(bytes_data=data)
            for entry in batch:
                if entry.stream == "exit":
                    await self.send(text_data=json.dumps(
                        {"type": "exit", "exit_code": entry.exit_code, "error": entry.error,
                         "id": entry.id}))
                    await self.close()
                    return

    async def receive(self, text_data=None, bytes_data=None):
        if bytes_data:
            await self.input.write(bytes_data)
            return
        try:
            message = json.loads(text_data or "")
        except ValueError:
            message = None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "input" and isinstance(message.get("data"), str):
            await self.input.write(message["data"].encode())
        elif kind == "resize" and all(
            isinstance(message.get(k), int) and 0 < message[k] <= 1000
            for k in ("rows", "columns")
        ):
            await self.input.resize(message["rows"], message["columns"])
        else:
            await self.send(text_data=json.dumps(
                {"type": "error", "message": "send input bytes, or JSON {type: resize|input}"}))

    async def disconnect(self, code):
        if self.pump is not None:
            self.pump.cancel()
        if self.input is not None:
            # A closed terminal hangs up its shell, as closing an ssh session does;
            # otherwise every closed browser tab would leave one running.
            with contextlib.suppress(*relay.REDIS_ERRORS):
                await self.input.hang_up()
            await self.input.close()


def _after(scope) -> str:
    """``?after=<entry id>`` resumes a reconnecting terminal without repeating output."""
    query = parse_qs(scope.get("query_string", b"").decode())
    try:
        return logs.parse_entry_id((query.get("after") or ["0"])[0])
    except InvalidInput:
        return "0"
