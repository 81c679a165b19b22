"""Images as reported by each host; a row means "this host can run this reference now"."""

from django.db import models


class Image(models.Model):
    host = models.ForeignKey("hosts.Host", on_delete=models.CASCADE, related_name="images")
    # NULL: a system image, usable by every team (all images agents report are).
    team = models.ForeignKey(
        "teams.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="images"
    )
    reference = models.CharField(max_length=512)
    digest = models.CharField(max_length=100, blank=True)
    image_id = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    created = models.DateTimeField(null=True, blank=True)
    config = models.JSONField(default=dict, blank=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["reference", "host__name"]
        constraints = [
            models.UniqueConstraint(fields=["host", "reference"], name="unique_host_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.reference} on {self.host}"
