"""Workflow, its immutable versions and its deployments, in the tenant's schema."""

from django.db import models
from django.db.models import Q


class Workflow(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    slug = models.SlugField(max_length=80)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    latest_version = models.ForeignKey("workflows.WorkflowVersion", null=True, on_delete=models.PROTECT, related_name="+")
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]
        constraints = [models.UniqueConstraint(fields=["slug"], condition=Q(deleted_at__isnull=True), name="workflow_slug_live")]

    def __str__(self) -> str:
        return self.slug


class WorkflowVersion(models.Model):
    """One definition, frozen: a run pins its version, and editing a workflow adds a version."""

    id = models.CharField(primary_key=True, max_length=40)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    checksum = models.CharField(max_length=64)
    created_by = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workflow", "number"]
        constraints = [models.UniqueConstraint(fields=["workflow", "number"], name="version_number_unique")]

    def __str__(self) -> str:
        return f"{self.workflow_id} v{self.number}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("a workflow version is immutable; create a new version instead")
        super().save(*args, **kwargs)


class Deployment(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="deployments")
    environment = models.CharField(max_length=40)
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="deployments")
    deployed_by = models.CharField(max_length=200)
    deployed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "environment"], name="deployment_env_unique")]

    def __str__(self) -> str:
        return f"{self.workflow_id} in {self.environment}"
