"""ASGI entry point served by daphne: MCP at /mcp (apps/mcp_bridge), Django for every other HTTP path.
WebSockets (issue 6) are mounted here too, as a "websocket" entry of the router."""

import os

from nexus_site.settings import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())
# Django under ASGI leaks a persistent connection per request (STACK.md): never keep them here; borrow pooled
# ones instead (settings: NEXUS_DB_POOL), which saves the ~2 ms connect of every MCP call and Django request.
os.environ["NEXUS_CONN_MAX_AGE"] = "0"
os.environ.setdefault("NEXUS_DB_POOL", "true")

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()

from apps.mcp_bridge.asgi import mcp_app  # noqa: E402  (needs Django set up)

mcp = mcp_app()
MCP_PATHS = frozenset({"/mcp", "/mcp/"})


def _served_at_root(scope: dict) -> dict:
    """The scope with an empty root_path. Nexus is always served at the root, and daphne fills root_path from the
    client's `Daphne-Root-Path` header: `/mcpx/api/v1/…` with `Daphne-Root-Path: /mcpx` would otherwise reach the
    REST API here. HAProxy deletes the header too; this holds when a request reaches daphne some other way."""
    return {**scope, "root_path": ""} if scope.get("root_path") else scope


async def http(scope, receive, send):
    scope = _served_at_root(scope)
    if scope["path"] in MCP_PATHS:
        await mcp(scope, receive, send)
    else:
        await django_asgi(scope, receive, send)


from apps.realtime.routing import websocket_application  # noqa: E402

sockets = websocket_application()


async def websocket(scope, receive, send):
    await sockets(_served_at_root(scope), receive, send)


# Servers that send lifespan events (uvicorn) start the MCP session manager with them; daphne sends none,
# and the MCP app starts it on its first request.
application = ProtocolTypeRouter({"http": http, "websocket": websocket, "lifespan": mcp})
