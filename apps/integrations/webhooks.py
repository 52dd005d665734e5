"""Outbound webhooks: which applications an event goes to, each delivery's life (send, retry, fail), and the
deliveries' listing and redelivery by hand.

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
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from standardwebhooks import Webhook

from apps.accounts.access import can_read_event
from apps.audit.recorder import audit_record
from apps.core.cache import TTLCache
from apps.core.dates import iso_utc
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.ids import new_id
from apps.core.locks import delivery_lock_key
from apps.core.principal import Principal
from apps.core.tasks import broker_for_read, tasks_send
from apps.integrations.models import Application, DeliveryStatus, WebhookDelivery
from apps.integrations.outbound import SendFailed, SendRefused, post_json
from apps.integrations.secrets import webhook_secret
from apps.integrations.selectors import READ_ACTION, WRITE_ACTION, app_access
from apps.ops.metrics import counter_incr

logger = logging.getLogger(__name__)

DELIVER_TASK = "integrations.deliver"
SWEEP_TASK = "integrations.sweep"
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
SWEEP_BATCH = 500
# A message may arrive a little before the row says the delivery is due (countdowns measured by another clock).
_DUE_TOLERANCE = timedelta(seconds=1)
_EVENT_FILTER_RE = re.compile(r"^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$")
# The shape of ids (apps/core/ids.py): anything else cannot exist, and is not sent to PostgreSQL (a NUL would fail).
_DELIVERY_ID_RE = re.compile(r"^whd_[0-9a-z]{26}$")
_TABLE = f"public.{WebhookDelivery._meta.db_table}"
# One row per subscribed application, joined with the live applications: one revoked since the cache was filled
# gets nothing. `{values}` is a list of "(%s, %s)" (delivery id, application id).
_DISPATCH_SQL = (
    f"INSERT INTO {_TABLE} (id, application_id, tenant_id, event_id, event_type, payload, status, attempts,"  # noqa: S608 (model metadata)
    " last_error, next_attempt_at, created_at)"
    " SELECT wanted.id, wanted.application_id, %s, %s, %s, %s::jsonb, %s, 0, '', %s, %s"
    " FROM (VALUES {values}) AS wanted (id, application_id)"
    f" JOIN public.{Application._meta.db_table} app ON app.id = wanted.application_id AND app.revoked_at IS NULL"
    " ON CONFLICT (application_id, event_id) DO NOTHING RETURNING id"
)
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


# ------------------------------------------------------------------------------------------ subscriptions


def event_type_matches(patterns: Iterable[str], event_type: str) -> bool:
    """Does a subscription (`*`, `<entity>.*`, exact types) take `event_type`? Given `<entity>.*` as the type,
    whether it takes some type of that entity."""
    entity = event_type.split(".", 1)[0]
    wildcard = event_type.endswith(".*")
    for pattern in patterns:
        if pattern in ("*", event_type, f"{entity}.*"):
            return True
        if wildcard and pattern.startswith(entity + "."):
            return True
    return False


@dataclass(frozen=True, slots=True)
class Subscription:
    application_id: str
    patterns: tuple[str, ...]
    reader: Principal  # the application as a reader: its role, narrowed by its scopes

    def takes(self, event_type: str) -> bool:
        """Subscribed to `event_type`, and allowed to read it (a `*` subscription hears only what it may read)."""
        return event_type_matches(self.patterns, event_type) and can_read_event(self.reader, event_type)


# tenant id -> subscriptions: tenants without webhooks pay one small query per
# NEXUS_AUTH_CACHE_S per process, not one per event or per run.
_subscribers = TTLCache(ttl_s=lambda: settings.NEXUS_AUTH_CACHE_S, topics=("credentials",))


def webhook_subscribers(tenant_id: int) -> tuple[Subscription, ...]:
    cached = _subscribers.get(tenant_id)
    if cached is not None:
        return cached
    rows = (
        Application.objects.filter(tenant_id=tenant_id, revoked_at__isnull=True)
        .exclude(webhook_url="")
        .values_list("id", "webhook_events", "role", "scopes")
    )
    subscribers = tuple(
        Subscription(
            application_id=app_id,
            patterns=tuple(pattern for pattern in events if isinstance(pattern, str)),
            reader=Principal(
                kind="application",
                actor=f"app:{app_id}",
                tenant_id=tenant_id,
                tenant_slug=None,
                role=role,
                application_id=app_id,
                scopes=frozenset(scopes) if scopes else None,
            ),
        )
        for app_id, events, role, scopes in rows
        if isinstance(events, list) and events
    )
    _subscribers.set(tenant_id, subscribers)
    return subscribers


def webhook_subscribers_forget(tenant_id: int | None = None) -> None:
    """Drop the cached subscriptions (of one tenant, or all): an application's change does it through the
    `credentials` topic, so this process sees it at once (others within NEXUS_AUTH_CACHE_S)."""
    if tenant_id is None:
        _subscribers.clear()
    else:
        _subscribers.forget(tenant_id)


def webhook_interested(tenant_id: int, event_type: str) -> bool:
    return any(subscription.takes(event_type) for subscription in webhook_subscribers(tenant_id))


def webhook_dispatch(payload: dict, tenant_id: int) -> list[str]:
    """The publish hook: one pending delivery per live application subscribed to the event's type and allowed
    to read it, written in the publisher's transaction by one INSERT, and one message each once it commits.
    Returns the new ids."""
    app_ids = [s.application_id for s in webhook_subscribers(tenant_id) if s.takes(payload["type"])]
    if not app_ids:
        return []
    now = timezone.now()
    body = json.dumps(payload)
    params: list[Any] = []
    for app_id in app_ids:
        params += [new_id("whd"), app_id]
    sql = _DISPATCH_SQL.replace("{values}", ", ".join(["(%s, %s)"] * len(app_ids)))
    head = [tenant_id, payload["id"], payload["type"], body, DeliveryStatus.PENDING, now, now]
    with connection.cursor() as cursor:
        cursor.execute(sql, head + params)
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        transaction.on_commit(lambda: deliveries_enqueue(ids), robust=True)
    return ids


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


# ------------------------------------------------------------------------------- reads and redelivery


def _application(*, principal: Principal, tenant_id: int, app_id: str, action: str) -> Application:
    return app_access(principal=principal, tenant_id=tenant_id, app_id=app_id, action=action, own=True)


def _delivery_missing(delivery_id) -> NotFound:
    return NotFound(f"delivery '{delivery_id}' does not exist", code="delivery_not_found")


def delivery_list(
    *,
    principal: Principal,
    tenant_id: int,
    app_id: str,
    status: str | None = None,
    event_type: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[WebhookDelivery]:
    """An application's deliveries, newest first, without their payloads. `event_type`: a type or `<entity>.*`."""
    fields: dict[str, str] = {}
    if status is not None and status not in DeliveryStatus.values:
        fields["status"] = f"one of {', '.join(DeliveryStatus.values)}"
    if event_type is not None and not _EVENT_FILTER_RE.match(event_type):
        fields["event_type"] = "an event type (execution.completed) or <entity>.*"
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        fields["limit"] = f"an integer from 1 to {MAX_LIMIT}"
    if fields:
        raise ValidationFailed("invalid delivery filter", fields=fields)
    app = _application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=READ_ACTION)
    deliveries = WebhookDelivery.objects.filter(application=app).defer("payload")
    if status is not None:
        deliveries = deliveries.filter(status=status)
    if event_type is not None:
        if event_type.endswith(".*"):
            deliveries = deliveries.filter(event_type__startswith=event_type[:-1])
        else:
            deliveries = deliveries.filter(event_type=event_type)
    return list(deliveries.order_by("-created_at", "-id")[:limit])


def delivery_get(*, principal: Principal, tenant_id: int, app_id: str, delivery_id: str) -> WebhookDelivery:
    app = _application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=READ_ACTION)
    found = _DELIVERY_ID_RE.match(delivery_id or "") and WebhookDelivery.objects.filter(id=delivery_id, application=app).first()
    if not found:
        raise _delivery_missing(delivery_id)
    return found


def delivery_redeliver(*, principal: Principal, tenant_id: int, app_id: str, delivery_id: str) -> WebhookDelivery:
    """Send a delivery again, whatever its state: back to pending with a fresh set of attempts, due now."""
    app = _application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=WRITE_ACTION)
    if not _DELIVERY_ID_RE.match(delivery_id or ""):
        raise _delivery_missing(delivery_id)
    if app.revoked_at is not None:
        raise Conflict(f"application '{app.id}' is revoked", code="application_revoked")
    if not app.webhook_url:
        raise Conflict(f"application '{app.id}' has no webhook URL", code="no_webhook_url")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().filter(id=delivery_id, application=app).first()
        if delivery is None:
            raise _delivery_missing(delivery_id)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [delivery_lock_key(delivery.id)])
            if not cursor.fetchone()[0]:
                raise Conflict("the delivery is being sent right now; try again in a moment", code="delivery_in_flight")
        previous = {"previous_status": delivery.status, "previous_attempts": delivery.attempts}
        delivery.status = DeliveryStatus.PENDING
        delivery.attempts = 0
        delivery.response_code = None
        delivery.latency_ms = None
        delivery.last_error = ""
        delivery.delivered_at = None
        delivery.next_attempt_at = timezone.now()
        delivery.save(
            update_fields=["status", "attempts", "response_code", "latency_ms", "last_error", "delivered_at", "next_attempt_at"]
        )
        audit_record(
            action="webhook.redelivered",
            tenant_id=tenant_id,
            principal=principal,
            target=delivery.id,
            details={"application": app.id, "event_id": delivery.event_id, "event_type": delivery.event_type, **previous},
        )
        transaction.on_commit(lambda: deliveries_enqueue([delivery.id]), robust=True)
    return delivery


def delivery_data(delivery: WebhookDelivery, *, with_payload: bool = False) -> dict[str, Any]:
    """The one JSON shape of a delivery, for the API and the CLI."""
    data: dict[str, Any] = {
        "id": delivery.id,
        "application": delivery.application_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "response_code": delivery.response_code,
        "latency_ms": delivery.latency_ms,
        "last_error": delivery.last_error,
        "next_attempt_at": iso_utc(delivery.next_attempt_at),
        "created_at": iso_utc(delivery.created_at),
        "delivered_at": iso_utc(delivery.delivered_at),
    }
    if with_payload:
        data["payload"] = delivery.payload
    return data
