"""Sending Celery tasks by name and waiting on them: the one module services go through to reach the broker.

Services never import task modules (a task is an adapter) nor Celery itself: they send a task by its registered
name with the schema it must run in (the tenant-aware Celery app switches the worker to it), and may wait for it.
"""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult

from nexus_site.celery import app as celery_app


def task_send(name: str, *, args: list, schema: str, task_id: str | None = None, queue: str | None = None) -> None:
    """Send task `name` to run in `schema` (on `queue`, default the app's)."""
    celery_app.send_task(name, args=args, task_id=task_id, headers={"_schema_name": schema}, queue=queue)


def tasks_send(
    name: str, arguments: Iterable[list], *, schema: str, queue: str | None = None, countdown: float | None = None
) -> tuple[int, Exception | None]:
    """Send task `name` once per argument list over one broker connection, results ignored (else the result
    backend subscribes to every message's result). Returns how many were sent, and the broker's error if it
    failed part way (nothing after it was sent)."""
    sent = 0
    try:
        with celery_app.producer_or_acquire() as producer:
            for args in arguments:
                celery_app.send_task(
                    name,
                    args=args,
                    queue=queue,
                    headers={"_schema_name": schema},
                    countdown=countdown,
                    producer=producer,
                    ignore_result=True,
                )
                sent += 1
    except Exception as error:  # the broker is away: the caller says what happens to the rest
        return sent, error
    return sent, None


def task_wait(task_id: str, *, timeout_s: float) -> None:
    """Wait until task `task_id` has finished (whatever its outcome) or `timeout_s` has passed."""
    with suppress(CeleryTimeout):
        AsyncResult(task_id, app=celery_app).get(timeout=timeout_s, propagate=False, disable_sync_subtasks=False)


@contextmanager
def broker_for_read() -> Iterator[Any]:
    """A connection to the broker (its Redis may not be REDIS_URL's), for reading queue lengths."""
    with celery_app.connection_for_read() as broker:
        yield broker
