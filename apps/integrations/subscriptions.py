"""Which applications an event goes to: their webhook subscriptions (cached per process) and the publish hook
that writes one pending delivery per subscribed application in the publisher's transaction."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.access import can_read_event
from apps.core.cache import TTLCache
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.integrations.delivery import deliveries_enqueue
from apps.integrations.models import Application, DeliveryStatus, WebhookDelivery

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
