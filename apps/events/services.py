"""publish(): store an event in the tenant's log and, after commit, fan it out on the channel layer."""

import re

from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.events.models import Event

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


def publish(*, type: str, source: str, data: dict | None = None, session_id: str | None = None) -> dict:
    """Store the event in the current tenant's schema; send it to subscribers once the transaction commits."""
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
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "nexus.event", "event": payload}
    async_to_sync(layer.group_send)(tenant_group(payload["tenant"]), message)
    if payload["session"]:
        async_to_sync(layer.group_send)(session_group(payload["tenant"], payload["session"]), message)
