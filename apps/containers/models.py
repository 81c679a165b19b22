"""A container is a row the control plane owns and a process an agent runs.

The row's ``state`` is whatever the agent last reported (``state_seq``
guards its order); ``pending`` and ``removing`` are the control plane's own
"waiting for the agent" states.
"""

import secrets

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from apps.containers.choices import DEFAULT_STOP_TIMEOUT, ExecState, Health, State
from apps.containers.names import MAX_NAME_LENGTH, NAME_PATTERN


def new_container_id() -> str:
    """64 lowercase hex digits like Docker's, so the 12-character short form is unique enough."""
    return secrets.token_hex(32)


class Container(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_container_id, editable=False)
    name = models.CharField(
        max_length=MAX_NAME_LENGTH,
        validators=[RegexValidator(f"^{NAME_PATTERN.pattern}$", "invalid container name")],
    )
    team = models.ForeignKey("teams.Team", on_delete=models.PROTECT, related_name="containers")
    host = models.ForeignKey("hosts.Host", on_delete=models.PROTECT, related_name="containers")
    image = models.ForeignKey("images.Image", on_delete=models.PROTECT, related_name="containers")
    image_reference = models.CharField(max_length=512)
    command = models.JSONField(default=list, blank=True)
    env = models.JSONField(default=list, blank=True)
    # Create options (apps/containers/options.py): columns for what is filtered on or
    # acted upon, the rest as given (normalised) in ``options``.
    labels = models.JSONField(default=dict, blank=True)
    restart_policy = models.CharField(max_length=32, default="no")
    auto_remove = models.BooleanField(default=False)
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(
        max_length=16, choices=State.choices, default=State.PENDING, db_index=True
    )
    state_seq = models.BigIntegerField(default=0)
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    oom_killed = models.BooleanField(default=False)
    restart_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The agent's health check verdict: status, failing_streak and the last probes.
    health_status = models.CharField(max_length=16, choices=Health.choices, blank=True,
                                     default=Health.NONE)
    health = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="unique_container_name_per_team"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id[:12]})"

    @property
    def short_id(self) -> str:
        return self.id[:12]

    @property
    def stop_timeout(self) -> int:
        """Seconds ``stop`` and ``restart`` wait before SIGKILL when the caller gives none."""
        timeout = (self.options or {}).get("stop_timeout")
        return DEFAULT_STOP_TIMEOUT if timeout is None else timeout


class Exec(models.Model):
    """A process started inside a running container (``docker exec``)."""

    id = models.CharField(primary_key=True, max_length=64, default=new_container_id, editable=False)
    container = models.ForeignKey(Container, on_delete=models.CASCADE, related_name="execs")
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    command = models.JSONField(default=list)
    env = models.JSONField(default=list, blank=True)
    user = models.CharField(max_length=256, blank=True)
    working_dir = models.CharField(max_length=4096, blank=True)
    tty = models.BooleanField(default=False)
    attach_stdin = models.BooleanField(default=False)
    state = models.CharField(max_length=16, choices=ExecState.choices, default=ExecState.CREATED)
    pid = models.IntegerField(null=True, blank=True)
    exit_code = models.IntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"exec {self.id[:12]} in {self.container_id[:12]}"

    @property
    def team(self):
        return self.container.team
