"""OAuth 2.0 Protected Resource Metadata (RFC 9728) for /mcp: where a client learns how to present a credential.

Served by Django (views.py) so it answers through the proxy, which sends only /mcp and /ws/ to the ASGI process.
"""

from django.conf import settings

WELL_KNOWN_PATH = "/.well-known/oauth-protected-resource"
MCP_PATH = "/mcp"
# RFC 9728 §3.1: the metadata of the resource https://host/mcp lives at /.well-known/oauth-protected-resource/mcp.
RESOURCE_METADATA_PATH = WELL_KNOWN_PATH + MCP_PATH


def base_url(*, scheme: str, host: str) -> str:
    """The origin the client used (the proxy passes the Host header through)."""
    return f"{scheme}://{host or f'{settings.NEXUS_HOST}:{settings.NEXUS_PORT}'}"


def resource_metadata_url(base: str) -> str:
    return base + RESOURCE_METADATA_PATH


def protected_resource_metadata(base: str) -> dict:
    return {
        "resource": base + MCP_PATH,
        "resource_name": "Nexus MCP server",
        # Nexus keys (`nxk_…`) and login JWTs, sent as `Authorization: Bearer …` (or `X-API-Key`).
        "bearer_methods_supported": ["header"],
        "resource_documentation": base + "/api/docs/",
    }
