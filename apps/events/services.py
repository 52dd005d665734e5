"""publish(): store an event in the tenant's log and, after commit, fan it out on the channel layer."""

import re

from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.events.fanout import fanout_send
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
        "ts": event.ts.isoformat().replace("+00:00", "Z"),
        "data": event.data,
    }


def tenant_group(tenant_slug: str) -> str:
    return f"tenant.{tenant_slug}"


def session_group(tenant_slug: str, session_id: str) -> str:
    return f"session.{tenant_slug}.{session_id}"


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
    tenant_slug = getattr(connection.tenant, "slug", connection.schema_name)
    payload = event_data(event, tenant_slug=tenant_slug)
    transaction.on_commit(lambda: _fan_out(payload))
    return payload


def _fan_out(payload: dict) -> None:
    groups = [tenant_group(payload["tenant"])]
    if payload["session"]:
        groups.append(session_group(payload["tenant"], payload["session"]))
    fanout_send(groups, {"type": "nexus.event", "event": payload})
