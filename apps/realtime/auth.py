"""ASGI middleware for WebSockets: the credential (X-API-Key, Authorization: Bearer …, ?token=) → principal + tenant.

Same credentials as the REST API (nxk_ API keys, nxo_ OAuth2 tokens and login JWTs), resolved by the same
selector. The database work runs in a thread through `database_sync_to_async`, which closes the connection
afterwards (under ASGI persistent connections leak, STACK.md). A missing or bad credential does not refuse the
handshake here: the consumer accepts and closes with 4401, so the client sees why.

A socket outlives its handshake, so its credential is resolved again, by the same selector, every
NEXUS_WS_RECHECK_S (`credentials_resolve`, driven by the event hub) and at once when an access notice names
it (apps/events/access_notices.py); the handshake's own check (apps/events/selectors.py `event_stream_require`,
recorded as `access.denied` when it refuses) decides, the same way each time, whether it may stay.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from apps.accounts.credentials import asgi_headers, credential_from_headers
from apps.accounts.selectors import principal_from_credential
from apps.core.cache import cache_forget
from apps.core.errors import ApplicationError, NotAuthenticated
from apps.core.principal import Principal
from apps.events.selectors import event_stream_require
from apps.tenants.connection import use_public

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def credential_from_scope(scope) -> str:
    """The socket's credential: the headers as on every door (apps/accounts/credentials.py), then `?token=`,
    since a browser cannot set headers on a WebSocket."""
    raw = credential_from_headers(asgi_headers(scope.get("headers") or []))
    if raw:
        return raw
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return (query.get("token") or [""])[0].strip()


def _resolve(raw: str):
    try:
        return principal_from_credential(raw)
    finally:
        use_public()


def _resolve_all(raws: list[str]) -> dict[str, tuple | ApplicationError]:
    """Each credential's (principal, tenant) if it may still stream its tenant's events, else the
    ApplicationError it now gets (a refusal is recorded as `access.denied`); one thread, one connection.
    Anything else (the database is away) propagates: no socket is closed for the platform's own failure."""
    resolved: dict[str, tuple | ApplicationError] = {}
    for raw in raws:
        try:
            principal, tenant = _resolve(raw)
            event_stream_require(principal=principal, tenant_id=tenant.pk)
            resolved[raw] = (principal, tenant)
        except ApplicationError as error:
            resolved[raw] = error
    return resolved


async def credentials_resolve(raws: list[str]) -> dict[str, tuple | ApplicationError]:
    return await database_sync_to_async(_resolve_all)(raws)


def recheck_refusal(resolved: tuple | ApplicationError, *, tenant_id: int) -> tuple[int, str] | None:
    """After a re-check: 4401 for a credential that no longer resolves (expired, revoked, its tenant suspended
    or deleted), 4403 for one that resolves but may no longer stream this tenant (a lower role, other scopes)."""
    if isinstance(resolved, NotAuthenticated):
        return CLOSE_UNAUTHENTICATED, resolved.code
    if isinstance(resolved, ApplicationError):
        return CLOSE_FORBIDDEN, resolved.code
    _, tenant = resolved
    if tenant.pk != tenant_id:
        return CLOSE_FORBIDDEN, "permission_denied"
    return None


def notice_refusal(notice: dict, principal: Principal) -> tuple[int, str] | None:
    """(close code, reason) when an access notice of this socket's tenant ends `principal`'s access."""
    reason: str = notice.get("reason") or ""
    if reason == "application_changed":  # decided by resolving the credential again (notice_rechecks)
        return None
    if reason in ("tenant_suspended", "tenant_deleted"):
        return CLOSE_FORBIDDEN, reason
    if "api_key" in notice and principal.api_key_id == notice["api_key"]:
        return CLOSE_UNAUTHENTICATED, reason
    # Rotated OAuth2 tokens leave the application's API key alone.
    if (
        "application" in notice
        and principal.application_id == notice["application"]
        and (reason != "tokens_revoked" or principal.api_key_id is None)
    ):
        return CLOSE_UNAUTHENTICATED, reason
    if "user" in notice and principal.user_id == notice["user"] and not principal.is_platform_admin:
        return CLOSE_FORBIDDEN, reason
    return None


def notice_rechecks(notice: dict, principal: Principal) -> bool:
    """Does an access notice ask for `principal`'s credential to be resolved again now?"""
    return notice.get("reason") == "application_changed" and principal.application_id == notice.get("application")


def notice_caches_clear() -> None:
    """An access notice also ends this process's cached credentials and tenants (MCP calls are served here too)."""
    cache_forget("credentials", "tenants")


def credential_holder(principal: Principal, tenant_id: int) -> str:
    """Whom the per-credential socket cap counts: the key, the application (its key and every token), or the
    user in the tenant (every login token of theirs)."""
    return f"{tenant_id}:{principal.actor}"


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope, principal=None, tenant=None, auth_error=None, credential="")
        raw = credential_from_scope(scope)
        if raw:
            scope["credential"] = raw
            try:
                scope["principal"], scope["tenant"] = await database_sync_to_async(_resolve)(raw)
            except ApplicationError as error:
                scope["auth_error"] = error.code
        else:
            scope["auth_error"] = "not_authenticated"
        return await self.inner(scope, receive, send)
