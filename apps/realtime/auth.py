"""ASGI middleware for WebSockets: the credential (Authorization: Bearer … or ?token=) → principal + tenant in the scope.

Same credentials as the REST API (nxk_ API keys and login JWTs), resolved by the same selectors. The database
work runs in a thread through `database_sync_to_async`, which closes the connection afterwards (under ASGI
persistent connections leak, STACK.md). A missing or bad credential does not refuse the handshake here: the
consumer accepts and closes with 4401, so the client sees why.
"""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.db import connection

from apps.core.errors import ApplicationError


def credential_from_scope(scope) -> str:
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    api_key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
    if api_key:
        return api_key
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return (query.get("token") or [""])[0].strip()


def _resolve(raw: str):
    from apps.accounts.selectors import principal_from_credential

    try:
        return principal_from_credential(raw)
    finally:
        connection.set_schema_to_public()


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope, principal=None, tenant=None, auth_error=None)
        raw = credential_from_scope(scope)
        if raw:
            try:
                scope["principal"], scope["tenant"] = await database_sync_to_async(_resolve)(raw)
            except ApplicationError as error:
                scope["auth_error"] = error.code
        else:
            scope["auth_error"] = "not_authenticated"
        return await self.inner(scope, receive, send)
