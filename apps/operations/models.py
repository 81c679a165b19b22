"""Work an agent does for a team: image work (pull, push, load, import, save), container
files, and container actions and exec starts (``apps/containers/operations.py``).

The row is created ``queued`` before the agent is told; the agent's progress
reports move it to ``running`` and its finish report to ``succeeded`` or
``failed``. Both are compare-and-set on ``status``, so late or repeated
reports never reopen a finished operation.
"""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.operations.choices import OperationKind, OperationStatus, TransferDirection


def new_operation_id() -> str:
    return secrets.token_hex(16)


class Operation(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_operation_id, editable=False)
    kind = models.CharField(max_length=16, choices=OperationKind.choices)
    status = models.CharField(
        max_length=16,
        choices=OperationStatus.choices,
        default=OperationStatus.QUEUED,
        db_index=True,
    )
    team = models.ForeignKey("teams.Team", on_delete=models.CASCADE, related_name="operations")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operations",
    )
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="operations")
    target = models.TextField(blank=True)  # the reference(s) the operation is about
    progress = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.id})"


class Transfer(models.Model):
    """An archive moving between a user and an agent through the control plane's disk.

    Only the SHA-256 of the token is stored; the file is named after it too,
    so neither the database nor a directory listing reveals a usable token.
    """

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="transfers")
    direction = models.CharField(max_length=16, choices=TransferDirection.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    size = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)  # the file is whole on disk
    removed_at = models.DateTimeField(null=True, blank=True)  # the file was deleted

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.direction} transfer of {self.operation_id}"
