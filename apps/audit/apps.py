"""Django app config for the audit log."""

from django.apps import AppConfig

# Celery tasks carry the request id of the call that queued them: its signal receivers connect on import.
from apps.audit import celery_context  # noqa: F401


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"
