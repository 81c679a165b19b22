from django.db import models


class OperationKind(models.TextChoices):
    PULL = "pull", "Pull"
    PUSH = "push", "Push"
    LOAD = "load", "Load"
    IMPORT = "import", "Import"
    SAVE = "save", "Save"
    # Container files (apps/containers/files.py): run as RPCs, closed by the caller.
    COPY_OUT = "copy_out", "Copy out"
    COPY_IN = "copy_in", "Copy in"
    EXPORT = "export", "Export"
    COMMIT = "commit", "Commit"
    # Container actions and exec starts (apps/containers/operations.py): queued for the
    # agent, closed by its state reports (update is an RPC, closed by the caller).
    CREATE = "create", "Create"
    START = "start", "Start"
    STOP = "stop", "Stop"
    RESTART = "restart", "Restart"
    KILL = "kill", "Kill"
    PAUSE = "pause", "Pause"
    UNPAUSE = "unpause", "Unpause"
    UPDATE = "update", "Update"
    REMOVE = "remove", "Remove"
    EXEC = "exec", "Exec"


class OperationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # row created, task queued for the agent
    RUNNING = "running", "Running"  # the agent reported progress
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TransferDirection(models.TextChoices):
    TO_AGENT = "to_agent", "To the agent"  # a user uploaded it; the agent GETs it
    FROM_AGENT = "from_agent", "From the agent"  # the agent PUTs it; a user downloads it


# Statuses in which agent reports still apply and transfers are open.
ACTIVE_STATUSES = frozenset({OperationStatus.QUEUED, OperationStatus.RUNNING})
# Kinds whose resulting new image rows belong to the operation's team.
OWNING_KINDS = frozenset(
    {OperationKind.PULL, OperationKind.LOAD, OperationKind.IMPORT, OperationKind.COMMIT}
)
