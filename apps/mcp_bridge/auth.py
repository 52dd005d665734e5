"""Who is calling /mcp: the same credentials as the REST API, resolved by the same selectors."""

from apps.accounts.selectors import principal_from_access_token, principal_from_api_key
from apps.core.errors import NotAuthenticated
from apps.core.principal import Principal
from apps.tenants.models import Tenant

KEY_PREFIX = "nxk_"


def credential_from_headers(*, authorization: str, api_key: str) -> str:
    """`X-API-Key` wins over `Authorization: Bearer …`, as in the REST API's middleware."""
    if api_key.strip():
        return api_key.strip()
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return ""


def principal_from_credential(raw: str) -> tuple[Principal, Tenant]:
    """An `nxk_` API key or a login JWT → (principal, its tenant). Anything else is an invalid API key, so a
    malformed credential and an unknown one get the same answer. Runs queries on a miss: call it off the loop."""
    if not raw:
        raise NotAuthenticated("authentication credentials were not provided", code="not_authenticated")
    # A JWT is three dot-separated parts; anything else (nxk_ keys, garbage) is answered as a key.
    if not raw.startswith(KEY_PREFIX) and raw.count(".") == 2:
        return principal_from_access_token(raw)
    return principal_from_api_key(raw)
