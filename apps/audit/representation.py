"""The one JSON shape of an audit row, for the API and the CLI."""

from apps.audit.models import AuditEvent
from apps.core.dates import iso_utc


def audit_event_data(event: AuditEvent, *, slugs: dict[int, str]) -> dict:
    return {
        "id": event.id,
        "seq": event.seq,
        "ts": iso_utc(event.ts),
        "tenant_id": event.tenant_id,
        "tenant": slugs.get(event.tenant_id),
        "actor": event.actor,
        "actor_type": event.actor_type,
        "channel": event.channel,
        "action": event.action,
        "target": event.target,
        "outcome": event.outcome,
        "ip": event.ip,
        "request_id": event.request_id,
        "details": event.details,
        "hash": event.hash,
    }
