"""Artifact: one file a run produced (a chart, a report), with its bytes, in the tenant's schema."""

from django.db import models
from django.db.models import Q


class Artifact(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    name = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    data = models.BinaryField()
    execution_id = models.CharField(max_length=40, null=True, blank=True)  # the run that made it
    node_id = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at"], name="artifact_created"),
            models.Index(
                fields=["execution_id", "-created_at"], name="artifact_execution_created", condition=Q(execution_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return self.name
