"""Reads of API applications: the one access check, listing, showing, and OAuth2 token introspection."""

import hashlib
import re
from typing import Any

from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from apps.accounts.access import require
from apps.core.errors import NotFound
from apps.core.principal import Principal
from apps.integrations.models import Application

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
    apps = _applications().select_for_update(of=("self",)) if for_update else _applications()
    well_formed = isinstance(app_id, str) and APP_ID_RE.match(app_id)
    app = apps.filter(id=app_id, tenant_id=tenant_id).first() if well_formed else None
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
