"""Names of the Redis streams that both the control plane and the agents use.

Neither side imports the other's code; the stream names are part of the
protocol (docs/agent-protocol.md) and live here, in the package both import.
"""


def exec_input(exec_id: str) -> str:
    """Client → process: ``{d: bytes}``, ``{resize: "rows cols"}``, ``{eof: 1}``, ``{kill: n}``;
    the agent itself appends ``{end: 1}`` once the process exited, to stop its reader."""
    return f"berth:exec:{exec_id}:in"


def exec_output(exec_id: str) -> str:
    """Process → clients: ``{s: stdout|stderr, d: bytes}`` entries, then one ``{exit: code}``."""
    return f"berth:exec:{exec_id}:out"


def attach_input(container_id: str) -> str:
    """Client → a container's own stdin or terminal: ``{d: bytes}``, ``{resize: "rows cols"}``,
    ``{eof: 1}`` (close an open stdin).

    The agent deletes each entry once written, so a later attacher never replays it.
    """
    return f"berth:attach:{container_id}:in"


# Not a stream but a pub/sub channel: every committed container change, as the JSON of
# its ContainerEvent (apps/containers/events.py). Pub/sub ignores the database number,
# so stacks sharing a Redis server hear each other's changes; ids never collide.
CONTAINER_CHANGES = "berth:containers:changed"


def team_events(team_id: int) -> str:
    """A team's container events, as the JSON of each ContainerEvent in field ``e``; capped
    at about 10,000 entries; entry ids are times (``docker events --since``)."""
    return f"berth:events:team:{team_id}"
