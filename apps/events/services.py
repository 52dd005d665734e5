"""publish(): store an event in the tenant's log and, after commit, fan it out to its tenant's subscribers."""

import re

from django.db import transaction
from django.utils import timezone

from apps.core.dates import iso_utc
from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.events.fanout import fanout_send
from apps.events.hooks import connection_tenant, hooks_run
from apps.events.models import Event
from apps.events.origin import current_origin

EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
SOURCES = frozenset({"api", "cli", "mcp", "web", "worker", "schedule", "webhook"})


def event_data(event: Event, *, tenant_slug: str) -> dict:
    """The one event shape of DESIGN §8."""
    return {
        "id": event.id,
        "type": event.type,
        "source": event.source,
        "tenant": tenant_slug,
        "session": event.session_id,
        "ts": iso_utc(event.ts),
        "data": event.data,
    }


def publish(*, type: str, source: str | None = None, data: dict | None = None, session_id: str | None = None) -> dict:
    """Store the event in the current tenant's schema; send it to subscribers once the transaction commits.
    `source` and `session_id` default to the caller's declared origin (apps/events/origin.py)."""
    origin = current_origin()
    source = source or origin.source
    session_id = session_id or origin.session_id
    if not EVENT_TYPE_RE.match(type or ""):
        raise ValidationFailed("invalid event type", fields={"type": "<entity>.<past_verb>, e.g. report.ready"})
    if source not in SOURCES:
        raise ValidationFailed("invalid event source", fields={"source": f"one of {', '.join(sorted(SOURCES))}"})
    event = Event.objects.create(
        id=new_id("evt"), type=type, source=source, session_id=session_id, data=data or {}, ts=timezone.now()
    )
    tenant_id, tenant_slug = connection_tenant()
    payload = event_data(event, tenant_slug=tenant_slug)
    hooks_run(payload, tenant_id=tenant_id)  # in this transaction (events/hooks.py)
    if tenant_id is not None:  # the public schema's events have no subscribers
        # One PUBLISH on the tenant's channel (events/fanout.py).
        transaction.on_commit(lambda: fanout_send(payload, tenant_id=tenant_id))
    return payload
