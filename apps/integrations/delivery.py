"""A webhook delivery's life: its message, each attempt (send, retry, fail), the sweep that loses nothing.

A delivery (`whd_…`, one per application and event) is `pending` until a 2xx answer makes it `delivered`.
A failed attempt (non-2xx, timeout, connection error) leaves it pending with `next_attempt_at` set by an
exponential backoff with full jitter, until the last attempt makes it `failed`; so do a refusal that no retry
can fix (an address the SSRF guard forbids, an invalid URL) and the application's revocation.

Invariants defended here:

* Nothing is lost. The rows are written in the publishing transaction (apps/events/hooks.py) and a message
  per row is sent once it commits. Beat's sweep re-enqueues every pending delivery overdue by more than
  NEXUS_WEBHOOK_SWEEP_GRACE_S: a message lost with a crashed process or broker, or a backoff longer than a
  broker countdown may safely be (Redis hands out again a message unacknowledged past its visibility timeout).
* One attempt at a time. An attempt holds a PostgreSQL advisory lock on the delivery (released by the server
  if the worker dies) and goes ahead only for a pending delivery that is due; a second copy of the message
  (the sweep's, a broker redelivery) finds the lock taken or the delivery done and does nothing.
* An attempt is counted before the request leaves: a delivery that kills its worker still runs out of attempts.
"""

import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from apps.core.locks import delivery_lock_key
from apps.core.tasks import broker_for_read, tasks_send
from apps.integrations.models import Application, DeliveryStatus, WebhookDelivery
from apps.integrations.outbound import SendFailed, SendRefused, post_json
from apps.integrations.secrets import webhook_secret
from apps.ops.metrics import counter_incr

logger = logging.getLogger(__name__)

DELIVER_TASK = "integrations.deliver"
SWEEP_TASK = "integrations.sweep"
SWEEP_BATCH = 500
# A message may arrive a little before the row says the delivery is due (countdowns measured by another clock).
_DUE_TOLERANCE = timedelta(seconds=1)
_TABLE = f"public.{WebhookDelivery._meta.db_table}"
# Lock and claim in one round trip. The lock is taken exactly once (a materialised CTE), whatever the row; the
# attempt is counted only for a pending, due delivery of a live application with a URL. `ok`: the lock is ours.
_CLAIM_SQL = (
    "WITH lock AS MATERIALIZED (SELECT pg_try_advisory_lock(%s) AS ok),"  # noqa: S608 (model metadata)
    f" claimed AS (UPDATE {_TABLE} AS d SET attempts = d.attempts + 1"
    f" FROM public.{Application._meta.db_table} AS app, lock"
    f" WHERE lock.ok AND d.id = %s AND d.status = '{DeliveryStatus.PENDING}'"
    " AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %s)"
    " AND app.id = d.application_id AND app.revoked_at IS NULL AND app.webhook_url <> ''"
    " RETURNING d.attempts, d.payload, app.id, app.webhook_url, app.webhook_secret_salt)"
    " SELECT lock.ok, claimed.* FROM lock LEFT JOIN claimed ON true"
)
# The outcome, then the unlock: evaluated per row of the count over `done`, so after the UPDATE ran.
_FINISH_SQL = (
    f"WITH done AS (UPDATE {_TABLE} SET {{assignments}} WHERE id = %s{{condition}} RETURNING 1)"  # noqa: S608 (model metadata)
    " SELECT counted.n, pg_advisory_unlock(%s) FROM (SELECT count(*) AS n FROM done) AS counted"
)
_SWEEP_SQL = (
    f"UPDATE {_TABLE} SET next_attempt_at = %s WHERE id IN ("  # noqa: S608 (model metadata)
    f"SELECT id FROM {_TABLE} WHERE status = %s AND next_attempt_at < %s"
    " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
)


# ---------------------------------------------------------------------------------------------- messages


def deliveries_enqueue(delivery_ids: Iterable[str], *, countdown: float | None = None) -> int:
    """One `integrations.deliver` message per delivery on the webhooks queue, run in the public schema. A
    message that cannot be sent is left to the sweep (the row is pending); returns how many were sent."""
    sent, error = tasks_send(
        DELIVER_TASK,
        ([delivery_id] for delivery_id in delivery_ids),
        schema=settings.PUBLIC_SCHEMA_NAME,
        queue=settings.NEXUS_WEBHOOK_QUEUE,
        countdown=countdown,
    )
    if error is not None:  # the broker is away: the sweep re-enqueues once it is back
        logger.warning("could not enqueue %s webhook deliveries (the sweep will): %s", "some" if sent else "the", error)
    return sent


def _countdown_limit_s() -> float:
    # Redis redelivers a message still unacknowledged after its visibility timeout, which a long countdown is.
    return settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600) / 2


def _queue_backlog() -> int:
    with broker_for_read() as broker:
        return int(broker.default_channel.client.llen(settings.NEXUS_WEBHOOK_QUEUE))


def _count(outcome: str) -> None:
    # /metrics: nexus_webhook_deliveries_total{status="delivered"|"failed"|"retried"} (a retried attempt)
    counter_incr("webhook_deliveries", {"status": outcome})


# -------------------------------------------------------------------------------------------- attempts


@dataclass(frozen=True, slots=True)
class AttemptResult:
    delivery_id: str
    outcome: str  # delivered | retrying | failed | skipped
    detail: str = ""
    retry_in_s: float | None = None


def backoff_s(attempts: int) -> float:
    """Full jitter: a uniform delay up to base * 2^(attempts - 1), capped at NEXUS_WEBHOOK_BACKOFF_MAX_S."""
    ceiling = settings.NEXUS_WEBHOOK_BACKOFF_BASE_S * 2 ** min(max(attempts - 1, 0), 62)
    return random.uniform(0, min(settings.NEXUS_WEBHOOK_BACKOFF_MAX_S, ceiling))


class _Claim:
    """This session's advisory lock on one delivery: released by the statement that records the attempt's
    outcome (after that statement's UPDATE, whose row lock then holds off a second copy until it commits),
    or by release() on any other way out."""

    def __init__(self, delivery_id: str, key: int) -> None:
        self.delivery_id = delivery_id
        self.key = key
        self.held = True

    def finish(self, *, only_pending: bool = False, **fields: Any) -> bool:
        """Write `fields` (column names from this module only) and release the lock; False if no row changed."""
        sql = _FINISH_SQL.format(
            assignments=", ".join(f"{name} = %s" for name in fields),
            condition=f" AND status = '{DeliveryStatus.PENDING}'" if only_pending else "",
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*fields.values(), self.delivery_id, self.key])
            updated = cursor.fetchone()[0]
        self.held = False
        return bool(updated)

    def release(self) -> None:
        if self.held:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [self.key])
            self.held = False


def delivery_attempt(*, delivery_id: str) -> AttemptResult:
    """Send a pending, due delivery once and record the outcome; safe to call twice at once (see the module).
    Two round trips besides the request: lock and claim, then the outcome and unlock."""
    key = delivery_lock_key(delivery_id)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [key, delivery_id, timezone.now() + _DUE_TOLERANCE])
        locked, attempts, payload, app_id, url, salt = cursor.fetchone()
    if not locked:
        return AttemptResult(delivery_id, "skipped", "another attempt is sending it")
    claim = _Claim(delivery_id, key)
    try:
        if attempts is None:
            result = _unclaimed(claim)
        else:
            body = payload if isinstance(payload, str) else json.dumps(payload)
            result = _send(claim, attempts=attempts, body=body, app_id=app_id, url=url, salt=salt)
    finally:
        claim.release()
    # After the unlock: an immediate retry must not find the lock still held and give up.
    if result.retry_in_s is not None and result.retry_in_s <= _countdown_limit_s():
        deliveries_enqueue([delivery_id], countdown=result.retry_in_s)
    return result


def _unclaimed(claim: _Claim) -> AttemptResult:
    """Locked but not claimed: say why, and fail a delivery whose application can no longer receive it."""
    delivery = WebhookDelivery.objects.select_related("application").filter(id=claim.delivery_id).first()
    if delivery is None:
        return AttemptResult(claim.delivery_id, "skipped", "no such delivery")
    if delivery.status != DeliveryStatus.PENDING:
        return AttemptResult(claim.delivery_id, "skipped", f"already {delivery.status}")
    if delivery.application.revoked_at is not None:
        return _fail(claim, "not sent: the application was revoked")
    if not delivery.application.webhook_url:
        return _fail(claim, "not sent: the application has no webhook URL")
    return AttemptResult(claim.delivery_id, "skipped", "not due yet")


def _send(claim: _Claim, *, attempts: int, body: str, app_id: str, url: str, salt: str) -> AttemptResult:
    sent_at = datetime.now(UTC)
    headers = {
        "webhook-id": claim.delivery_id,  # the same on every attempt: receivers deduplicate on it
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": Webhook(webhook_secret(app_id=app_id, salt=salt)).sign(claim.delivery_id, sent_at, body),
    }
    try:
        answer = post_json(
            url=url,
            body=body.encode(),
            headers=headers,
            timeout_s=settings.NEXUS_WEBHOOK_TIMEOUT_S,
            allow_private=settings.NEXUS_WEBHOOK_ALLOW_PRIVATE,
        )
    except SendRefused as refusal:
        return _fail(claim, str(refusal))
    except SendFailed as failure:
        return _retry_or_fail(claim, attempts=attempts, error=str(failure), response_code=None, latency_ms=None)
    if 200 <= answer.status < 300:
        claim.finish(
            status=DeliveryStatus.DELIVERED,
            response_code=answer.status,
            latency_ms=answer.latency_ms,
            last_error="",
            next_attempt_at=None,
            delivered_at=timezone.now(),
        )
        _count("delivered")
        return AttemptResult(claim.delivery_id, "delivered", f"HTTP {answer.status}")
    snippet = " ".join(answer.body.split())[:300]
    error = f"HTTP {answer.status}" + (f": {snippet}" if snippet else "")
    return _retry_or_fail(claim, attempts=attempts, error=error, response_code=answer.status, latency_ms=answer.latency_ms)


def _fail(claim: _Claim, reason: str) -> AttemptResult:
    claim.finish(status=DeliveryStatus.FAILED, last_error=reason, next_attempt_at=None)
    _count("failed")
    return AttemptResult(claim.delivery_id, "failed", reason)


def _retry_or_fail(
    claim: _Claim, *, attempts: int, error: str, response_code: int | None, latency_ms: float | None
) -> AttemptResult:
    if attempts >= settings.NEXUS_WEBHOOK_MAX_ATTEMPTS:
        claim.finish(
            status=DeliveryStatus.FAILED,
            last_error=f"{error} (gave up after {attempts} attempts)",
            response_code=response_code,
            latency_ms=latency_ms,
            next_attempt_at=None,
        )
        _count("failed")
        return AttemptResult(claim.delivery_id, "failed", error)
    delay = backoff_s(attempts)
    # Only while still pending: a revocation meanwhile has the last word.
    updated = claim.finish(
        only_pending=True,
        last_error=error,
        response_code=response_code,
        latency_ms=latency_ms,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    _count("retried")
    return AttemptResult(claim.delivery_id, "retrying", error, retry_in_s=delay if updated else None)


def webhook_deliveries_fail(*, application_id: str, reason: str) -> int:
    """Fail every pending delivery of an application (its revocation); returns how many."""
    return WebhookDelivery.objects.filter(application_id=application_id, status=DeliveryStatus.PENDING).update(
        status=DeliveryStatus.FAILED, last_error=reason, next_attempt_at=None
    )


def deliveries_sweep() -> dict[str, int]:
    """Beat's safety net: fail the pending deliveries of revoked applications, and re-enqueue pending deliveries
    overdue by more than the grace, pushing their due time to now so each is re-enqueued at most once per grace.
    A long queue means the workers are behind, not that messages were lost: then nothing is re-enqueued."""
    revoked = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, application__revoked_at__isnull=False).update(
        status=DeliveryStatus.FAILED, last_error="not sent: the application was revoked", next_attempt_at=None
    )
    if _queue_backlog() >= SWEEP_BATCH:
        return {"failed": revoked, "requeued": 0}
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.NEXUS_WEBHOOK_SWEEP_GRACE_S)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SWEEP_SQL, [now, DeliveryStatus.PENDING, cutoff, SWEEP_BATCH])
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        logger.warning("re-enqueued %d overdue webhook deliveries", len(ids))
    return {"failed": revoked, "requeued": deliveries_enqueue(ids)}
