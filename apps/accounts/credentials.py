"""Which credential a request carries: one rule for every door (REST, MCP, WebSocket), so no door reads another."""

from collections.abc import Iterable, Mapping

AUTHORIZATION_HEADER = "authorization"
API_KEY_HEADER = "x-api-key"


def credential_from_headers(headers: Mapping[str, str]) -> str:
    """The raw credential of a request: `X-API-Key` wins over `Authorization: Bearer …`; "" when there is none.

    `headers` maps lower-case names to values (an ASGI request's headers, decoded) or is Django's
    case-insensitive `request.headers`. A browser's WebSocket cannot set either header: the realtime door
    falls back to `?token=` itself, after both.
    """
    api_key = (headers.get(API_KEY_HEADER) or "").strip()
    if api_key:
        return api_key
    authorization = headers.get(AUTHORIZATION_HEADER) or ""
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return ""


def asgi_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI scope's header pairs as a dict of lower-case names (the last of a repeated header wins)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
