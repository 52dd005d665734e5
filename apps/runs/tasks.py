"""Celery tasks for runs: thin adapters that take ids and call the runs services."""

import threading

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

from apps.runs.queues import TenantBusy, queues_follow
from apps.runs.services import EXECUTE_TASK, RunBusy, run_execute

_stop_following = threading.Event()


@shared_task(name=EXECUTE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def execute_run(self, run_id: str) -> str:
    try:
        return run_execute(run_id=run_id)
    except TenantBusy as busy:
        # The tenant's slots are all taken: the run stays queued and comes back later, from the tenant's own
        # queue, so other tenants' queues are not held up.
        raise self.retry(countdown=busy.retry_in()) from None
    except RunBusy:
        # A second copy (redelivery) while the first is alive: look again once it may have finished.
        raise self.retry(countdown=5) from None


@worker_ready.connect
def _follow_tenant_queues(sender=None, **kwargs) -> None:
    """Consume every strict tenant's queue, now and as tenants come and go (apps/runs/queues.py)."""
    threading.Thread(target=queues_follow, args=(sender, _stop_following), name="nexus-queues", daemon=True).start()


@worker_shutdown.connect
def _stop_following_queues(sender=None, **kwargs) -> None:
    _stop_following.set()
