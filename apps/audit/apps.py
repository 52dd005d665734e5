"""Django app config for the audit log."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "apps.audit"
    label = "audit"

    def ready(self) -> None:
        # Celery tasks carry the request id of the call that queued them (apps/audit/celery_context.py).
        from apps.audit import celery_context  # noqa: F401
