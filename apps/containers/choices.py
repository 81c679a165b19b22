from django.db import models


class State(models.TextChoices):
    PENDING = "pending", "Pending"  # row created, run message queued for the agent
    CREATED = "created", "Created"
    RUNNING = "running", "Running"
    EXITED = "exited", "Exited"
    REMOVING = "removing", "Removing"  # remove requested, waiting for the agent
    REMOVED = "removed", "Removed"  # only ever seen in reports; the row is deleted
    UNKNOWN = "unknown", "Unknown"


# States an agent may report (docs/agent-protocol.md).
REPORTED_STATES = frozenset({State.CREATED, State.RUNNING, State.EXITED, State.REMOVED})
# States in which a stop or kill can still do something.
SIGNALLABLE_STATES = frozenset({State.PENDING, State.CREATED, State.RUNNING, State.UNKNOWN})
# States that occupy a host (used to spread new containers across hosts).
ACTIVE_STATES = frozenset({State.PENDING, State.CREATED, State.RUNNING})

DEFAULT_STOP_TIMEOUT = 10
DEFAULT_KILL_SIGNAL = 9
