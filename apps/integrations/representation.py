"""The one JSON shape of an API application, shared by the API and the CLI (never a secret, never a hash)."""

from typing import Any

from apps.core.dates import iso_utc
from apps.integrations.models import Application


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
        "api_key_prefix": app.api_key.prefix if app.api_key_id else None,
        "client_id": app.oauth_application.client_id if app.oauth_application_id else None,
        "created_by": app.created_by,
        "created_at": iso_utc(app.created_at),
        "revoked_at": iso_utc(app.revoked_at),
    }
