"""MailMessage: one message the platform sent or captured for a tenant, in the tenant's schema (its outbox)."""

from django.db import models
from django.db.models import Q

LOCAL_OUTBOX = "local outbox"


class MailStatus(models.TextChoices):
    CAPTURED = "captured"  # kept in the local outbox: no mail server is configured, nothing left the machine
    SENT = "sent"  # accepted by the mail server
    FAILED = "failed"  # the mail server refused it or could not be reached (`error` says why)


class MailMessage(models.Model):
    id = models.CharField(primary_key=True, max_length=40)  # msg_…
    message_id = models.CharField(max_length=255)  # the Message-ID header
    from_address = models.CharField(max_length=254)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list)
    subject = models.TextField()
    body = models.TextField()
    html = models.TextField(null=True, blank=True)
    # [{"name", "content_type", "size", "artifact_id"}]: the bytes stay in the artifacts they came from.
    attachments = models.JSONField(default=list)
    # The run and workflow that sent it; null when a principal asked directly (MCP send_email_report).
    execution_id = models.CharField(max_length=40, null=True, blank=True)
    workflow_id = models.CharField(max_length=40, null=True, blank=True)
    workflow_slug = models.CharField(max_length=80, null=True, blank=True)
    actor = models.CharField(max_length=200)
    source = models.CharField(max_length=40)
    transport = models.CharField(max_length=300)  # LOCAL_OUTBOX, or the server (smtp://host:port)
    status = models.CharField(max_length=20, choices=MailStatus.choices)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="mail_created"),
            models.Index(
                fields=["execution_id", "-created_at"], name="mail_execution_created", condition=Q(execution_id__isnull=False)
            ),
            models.Index(
                fields=["workflow_id", "-created_at"], name="mail_workflow_created", condition=Q(workflow_id__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.subject[:60]}"
