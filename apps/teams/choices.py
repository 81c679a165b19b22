from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    OPERATOR = "operator", "Operator"
    VIEWER = "viewer", "Viewer"


# Roles allowed to create containers and act on them (stop, kill, remove).
ACTING_ROLES = (Role.OWNER, Role.OPERATOR)
