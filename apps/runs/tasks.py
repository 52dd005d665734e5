"""Celery tasks for runs: thin adapters that take ids and call the runs services."""

from celery import shared_task

from apps.runs.services import EXECUTE_TASK, RunBusy, run_execute


@shared_task(name=EXECUTE_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def execute_run(self, run_id: str) -> str:
    try:
        return run_execute(run_id=run_id)
    except RunBusy:
        # A second copy (redelivery) while the first is alive: look again once it may have finished.
        raise self.retry(countdown=5) from None
