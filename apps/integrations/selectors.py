"""Reads of API applications: the one access check, listing, showing, and OAuth2 token introspection."""

import hashlib
import re
from typing import Any

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from apps.accounts.access import require
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principal import Principal
from apps.integrations.models import Application, DeliveryStatus, WebhookDelivery

READ_ACTION = "app.read"
WRITE_ACTION = "app.write"
# What new_id("app") makes: anything else (a NUL byte, 2 KB of junk) is answered 404 without a query.
APP_ID_RE = re.compile(r"^app_[0-9a-z]{26}$")


def _applications():
    return Application.objects.select_related("api_key", "oauth_application", "tenant")


def app_access(*, principal: Principal, tenant_id: int, app_id: str, action: str, own: bool = False, for_update: bool = False):
    """The tenant's application `app_id` if `principal` may take `action` on it (or, with `own`, is that very
    application). Another tenant's application and a missing one are the same 404."""
    is_self = own and principal.application_id is not None and principal.application_id == app_id
    if not is_self or principal.tenant_id != tenant_id:
        require(principal, action, tenant_id=tenant_id)
    well_formed = isinstance(app_id, str) and APP_ID_RE.match(app_id)
    if well_formed and for_update:
        # Lock the row first, then read it with its key and client: a SELECT … FOR UPDATE that waited for another
        # writer (a rotation) re-reads the locked row but not the joined ones, and would pair the new api_key_id
        # with no key at all.
        Application.objects.select_for_update().filter(id=app_id, tenant_id=tenant_id).values_list("id").first()
    app = _applications().filter(id=app_id, tenant_id=tenant_id).first() if well_formed else None
    if app is None:
        raise NotFound(f"application '{app_id}' does not exist", code="application_not_found")
    return app


def app_list(*, principal: Principal, tenant_id: int) -> list[Application]:
    """The tenant's applications, newest first, revoked ones included (with `revoked_at`)."""
    require(principal, READ_ACTION, tenant_id=tenant_id)
    return list(_applications().filter(tenant_id=tenant_id).order_by("-created_at", "-id"))


def app_get(*, principal: Principal, tenant_id: int, app_id: str) -> Application:
    """An application, for a principal allowed to read applications or for the application itself."""
    return app_access(principal=principal, tenant_id=tenant_id, app_id=app_id, action=READ_ACTION, own=True)


def oauth_token_introspect(*, client, token: str) -> dict[str, Any] | None:
    """RFC 7662 claims of `token` for the authenticated toolkit `client`, or None (inactive) when the token is
    unknown, expired, another client's, or its application is revoked. `scope` is what the token may do now:
    the scopes it was granted, narrowed by its application's current ones."""
    if client is None or not isinstance(token, str) or not token:
        return None
    checksum = hashlib.sha256(token.encode()).hexdigest()
    found = (
        get_access_token_model()
        .objects.select_related("application__nexus_application__tenant")
        .filter(token_checksum=checksum, application=client, expires__gt=timezone.now())
        .first()
    )
    if found is None:
        return None
    app = getattr(found.application, "nexus_application", None)
    if app is None or app.revoked_at is not None or not app.tenant.is_active:
        return None
    scopes = found.scope.split()
    if app.scopes:
        scopes = [scope for scope in scopes if scope in app.scopes]
    return {
        "scope": " ".join(scopes),
        "client_id": client.client_id,
        "token_type": "Bearer",
        "exp": int(found.expires.timestamp()),
        "iat": int(found.created.timestamp()),
        "sub": app.id,
        "tenant": app.tenant.slug,
        "role": app.role,
    }


# ------------------------------------------------------------------------------------- webhook deliveries

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
EVENT_FILTER_RE = re.compile(r"^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$")
# The shape of ids (apps/core/ids.py): anything else cannot exist, and is not sent to PostgreSQL (a NUL would fail).
DELIVERY_ID_RE = re.compile(r"^whd_[0-9a-z]{26}$")


def delivery_application(*, principal: Principal, tenant_id: int, app_id: str, action: str) -> Application:
    return app_access(principal=principal, tenant_id=tenant_id, app_id=app_id, action=action, own=True)


def delivery_missing(delivery_id) -> NotFound:
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
    if event_type is not None and not EVENT_FILTER_RE.match(event_type):
        fields["event_type"] = "an event type (execution.completed) or <entity>.*"
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        fields["limit"] = f"an integer from 1 to {MAX_LIMIT}"
    if fields:
        raise ValidationFailed("invalid delivery filter", fields=fields)
    app = delivery_application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=READ_ACTION)
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
    app = delivery_application(principal=principal, tenant_id=tenant_id, app_id=app_id, action=READ_ACTION)
    found = DELIVERY_ID_RE.match(delivery_id or "") and WebhookDelivery.objects.filter(id=delivery_id, application=app).first()
    if not found:
        raise delivery_missing(delivery_id)
    return found
