"""Celery beat tasks for the audit log: seal new rows into the hash chain, prune rows past the retention."""

from celery import shared_task

from apps.audit.services import audit_prune_for_schedule, audit_seal

SEAL_TASK = "audit.seal"
PRUNE_TASK = "audit.prune"


@shared_task(name=SEAL_TASK, ignore_result=True)
def seal_audit_log() -> int:
    # A sealer still at work from the last beat keeps the lock; this one leaves it to it.
    return audit_seal(wait=False)


@shared_task(name=PRUNE_TASK, ignore_result=True)
def prune_audit_log() -> int:
    return audit_prune_for_schedule()["deleted"]
