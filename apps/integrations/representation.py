"""The JSON shapes of an API application (never a secret, never a hash) and of a webhook delivery, shared by the API
and the CLI."""

from typing import Any

from apps.core.dates import iso_utc
from apps.integrations.models import Application, WebhookDelivery


def application_data(app: Application, *, tenant_slug: str) -> dict[str, Any]:
    return {
        "id": app.id,
        "name": app.name,
        "tenant": tenant_slug,
        "role": app.role,
        "scopes": list(app.scopes),
        "webhook_url": app.webhook_url,
        "webhook_events": list(app.webhook_events),
        "rate_limit_per_minute": app.rate_limit_per_minute,
        "api_key_id": app.api_key_id,
        "api_key_prefix": app.api_key.prefix if app.api_key is not None else None,
        "client_id": app.oauth_application.client_id if app.oauth_application is not None else None,
        "created_by": app.created_by,
        "created_at": iso_utc(app.created_at),
        "revoked_at": iso_utc(app.revoked_at),
    }


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
