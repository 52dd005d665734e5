"""The tenant-aware Celery app: every task runs in the schema it was sent from."""

import os

from celery.signals import task_postrun
from tenant_schemas_celery.app import CeleryApp

from nexus_site.settings import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

app = CeleryApp("nexus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_postrun.connect(weak=False, dispatch_uid="nexus_close_old_connections")
def _close_old_connections(sender=None, **kwargs) -> None:
    """What Django does after a request: close a connection that errored or outlived CONN_MAX_AGE (settings
    CELERY_DB_REUSE_MAX). Not for eager tasks: they run inside the caller's (a test's) transaction."""
    if sender is not None and getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
