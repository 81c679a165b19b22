from django.db import models


class State(models.TextChoices):
    PENDING = "pending", "Pending"  # row created, run message queued for the agent
    CREATED = "created", "Created"
    RUNNING = "running", "Running"
    RESTARTING = "restarting", "Restarting"  # exited; the host's restart policy starts it again
    PAUSED = "paused", "Paused"  # frozen (cgroup freezer)
    EXITED = "exited", "Exited"
    REMOVING = "removing", "Removing"  # remove requested, waiting for the agent
    REMOVED = "removed", "Removed"  # only ever seen in reports; the row is deleted
    UNKNOWN = "unknown", "Unknown"


# States an agent may report (docs/agent-protocol.md).
REPORTED_STATES = frozenset(
    {
        State.CREATED,
        State.RUNNING,
        State.RESTARTING,
        State.PAUSED,
        State.EXITED,
        State.REMOVED,
    }
)
# States with a process (or a shim about to restart one) on the host.
LIVE_STATES = frozenset({State.RUNNING, State.RESTARTING, State.PAUSED})
# States in which a stop or kill can still do something.
SIGNALLABLE_STATES = frozenset({State.PENDING, State.CREATED, State.UNKNOWN}) | LIVE_STATES
# States that occupy a host (used to spread new containers across hosts).
ACTIVE_STATES = frozenset({State.PENDING, State.CREATED}) | LIVE_STATES
# States in which the container exists on its host (so the agent can act on it).
ON_HOST_STATES = frozenset({State.CREATED, State.EXITED}) | LIVE_STATES
# States ``start`` accepts (like ``docker start``).
STARTABLE_STATES = frozenset({State.CREATED, State.EXITED})
# States in which logs may still grow: following them goes on while the row is in one.
LOGGING_STATES = frozenset({State.PENDING}) | LIVE_STATES
# States that have stats (a cgroup with processes).
STATS_STATES = frozenset({State.RUNNING, State.PAUSED})

DEFAULT_STOP_TIMEOUT = 10
DEFAULT_KILL_SIGNAL = 9
DEFAULT_WAIT_TIMEOUT = 60
MAX_WAIT_TIMEOUT = 3600

# Restart policy names, as ``docker run --restart`` takes them ("on-failure" may add ":N").
RESTART_POLICIES = ("no", "on-failure", "always", "unless-stopped")


class ExecState(models.TextChoices):
    CREATED = "created", "Created"  # recorded, not started (docker exec create)
    STARTING = "starting", "Starting"  # start message queued for the agent
    RUNNING = "running", "Running"
    EXITED = "exited", "Exited"
    FAILED = "failed", "Failed"  # never ran: no such command, container not running


EXEC_FINAL_STATES = frozenset({ExecState.EXITED, ExecState.FAILED})


class Health(models.TextChoices):
    NONE = "", "No health check"
    STARTING = "starting", "Starting"
    HEALTHY = "healthy", "Healthy"
    UNHEALTHY = "unhealthy", "Unhealthy"
