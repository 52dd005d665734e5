"""Celery tasks for outbound webhooks: thin adapters that take delivery ids and call the delivery module."""

from celery import shared_task

from apps.integrations.delivery import DELIVER_TASK, SWEEP_TASK, deliveries_sweep, delivery_attempt


@shared_task(name=DELIVER_TASK, ignore_result=True, acks_late=True, reject_on_worker_lost=True)
def deliver_webhook(delivery_id: str) -> str:
    # The retry, when there is one, is scheduled by the service (a new message with a countdown).
    return delivery_attempt(delivery_id=delivery_id).outcome


@shared_task(name=SWEEP_TASK, ignore_result=True)
def sweep_webhook_deliveries() -> dict:
    return deliveries_sweep()
