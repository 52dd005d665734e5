"""/mcp as an ASGI app next to Django: Host/Origin checks, the caller's credential, then the SDK's stateless
Streamable HTTP transport.

Stateless (`stateless_http=True`): no MCP session lives in a process, so any `realtime` node behind the
load balancer can answer any request. The SDK's session manager must be running (its task group serves
every request); daphne sends no lifespan events, so it is started on the first request, once per process.
"""

import asyncio
import json
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.db import close_old_connections
from mcp.server.transport_security import TransportSecuritySettings

from apps.accounts.credentials import asgi_headers, credential_from_headers
from apps.accounts.selectors import principal_from_credential
from apps.core.errors import ApplicationError
from apps.mcp_bridge.metadata import MCP_PATH, base_url, resource_metadata_url
from apps.mcp_bridge.server import PRINCIPAL_KEY, TENANT_KEY, build_server
from apps.ratelimit.policy import principal_check, refusal

logger = logging.getLogger(__name__)


def host_allowed(hostname: str | None, patterns: list[str]) -> bool:
    """Django's ALLOWED_HOSTS rules: an exact name, `.example.com` for it and its subdomains, `*` for any."""
    if not hostname:
        return False
    hostname = hostname.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern == "*" or hostname == pattern:
            return True
        if pattern.startswith(".") and (hostname == pattern[1:] or hostname.endswith(pattern)):
            return True
    return False


def _hostname(host_header: str) -> str | None:
    try:
        return urlsplit("//" + host_header).hostname
    except ValueError:
        return None


def _bracketed(hostname: str | None) -> str | None:
    # urlsplit drops the brackets of an IPv6 literal; patterns keep them, as Host headers do.
    return f"[{hostname}]" if hostname and ":" in hostname else hostname


def request_allowed(headers: dict[str, str], patterns: list[str]) -> tuple[int, str] | None:
    """DNS-rebinding protection: the Host must be ours, and a browser's Origin too. None when the request may pass."""
    if not host_allowed(_bracketed(_hostname(headers.get("host", ""))), patterns):
        return 421, "Invalid Host header"
    origin = headers.get("origin")
    if origin is not None:
        try:
            parts = urlsplit(origin)
            hostname = parts.hostname if parts.scheme in ("http", "https") else None
        except ValueError:
            hostname = None
        if not host_allowed(_bracketed(hostname), patterns):
            return 403, "Invalid Origin header"
    return None


async def _send_json(send, status: int, body: dict, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _resolve(raw: str):
    """The caller, and its rate-limit decision (apps/ratelimit, as for every HTTP request), in one thread hop."""
    try:
        principal, tenant = principal_from_credential(raw)
        return principal, tenant, principal_check(principal)
    finally:
        close_old_connections()


def _with_rate_headers(send, extra: list[tuple[bytes, bytes]]):
    async def send_with_headers(message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return send_with_headers


class McpApp:
    """The ASGI app serving /mcp (nexus_site/asgi.py routes it). One per process."""

    def __init__(self, *, allowed_hosts: list[str] | None = None):
        self.allowed_hosts = allowed_hosts
        self.server = build_server()
        # Host and Origin are checked here (with subdomain patterns for tenant domains, which the SDK's
        # exact-match list cannot express); the SDK still checks the content type of every POST.
        self.server.streamable_http_app(
            streamable_http_path=MCP_PATH,
            stateless_http=True,
            json_response=False,  # SSE: a waited-on run streams progress; a quick answer is still plain JSON
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self.manager = self.server.session_manager
        self._running: asyncio.Task | None = None
        # Bound to the event loop on first use (asyncio.Event takes no loop since Python 3.10), not here.
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()

    # -------------------------------------------------------------------------------- session manager

    async def _run_manager(self) -> None:
        try:
            async with self.manager.run():
                self._started.set()
                await self._stopped.wait()
        except Exception:
            logger.exception("the MCP session manager failed")
            raise
        finally:
            self._started.set()  # wake anyone waiting; they find the task done

    async def ensure_started(self) -> None:
        """Start the session manager once per process. No await runs between the check and the task's creation,
        so concurrent first requests on the event loop start it exactly once, and all wait for it."""
        if self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run_manager(), name="mcp-session-manager")
        if not self._started.is_set():
            await self._started.wait()
        if self._running.done():
            raise RuntimeError("the MCP session manager is not running (see the log)")

    async def stop(self) -> None:
        if self._running is not None and not self._running.done():
            self._stopped.set()
            await self._running

    async def _lifespan(self, receive, send) -> None:
        """For ASGI servers that do send lifespan events (uvicorn): start with them instead of on first request."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.ensure_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # ------------------------------------------------------------------------------------- requests

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        headers = asgi_headers(scope["headers"])
        patterns = self.allowed_hosts if self.allowed_hosts is not None else settings.NEXUS_MCP_ALLOWED_HOSTS
        refused = request_allowed(headers, patterns)
        if refused is not None:
            await _send_json(send, refused[0], {"detail": refused[1], "code": "invalid_host"})
            return
        base = base_url(scheme=scope.get("scheme", "http"), host=headers.get("host", ""))
        raw = credential_from_headers(headers)
        challenge = f'Bearer resource_metadata="{resource_metadata_url(base)}"'
        if not raw:
            body = {"detail": "authentication credentials were not provided", "code": "not_authenticated"}
            await _send_json(send, 401, body, [(b"www-authenticate", challenge.encode())])
            return
        # One thread for this request's ORM work (Django's ASGI handler does the same): a slow call never
        # queues the other callers behind it on the process-wide thread.
        async with ThreadSensitiveContext():
            try:
                principal, tenant, decision = await sync_to_async(_resolve, thread_sensitive=True)(raw)
            except ApplicationError as error:
                description = error.detail.replace('"', "'")
                challenge += f', error="invalid_token", error_description="{description}"'
                await _send_json(send, 401, error.as_dict(), [(b"www-authenticate", challenge.encode())])
                return
            if decision is not None:
                rate_headers = [(name.lower().encode(), value.encode()) for name, value in decision.headers().items()]
                if not decision.allowed:
                    await _send_json(send, 429, refusal(decision).as_dict(), rate_headers)
                    return
                send = _with_rate_headers(send, rate_headers)
            if scope["method"] == "GET":
                # Stateless: no standalone stream will ever carry anything, so say so (the spec's 405) rather
                # than hold the connection open forever.
                body = {
                    "detail": "this server offers no SSE stream at this endpoint: POST requests",
                    "code": "method_not_allowed",
                }
                await _send_json(send, 405, body, [(b"allow", b"POST")])
                return
            await self.ensure_started()
            await self.manager.handle_request({**scope, PRINCIPAL_KEY: principal, TENANT_KEY: tenant}, receive, send)


_app: McpApp | None = None


def mcp_app() -> McpApp:
    """The process's MCP app, built on first use (after Django is set up)."""
    global _app
    if _app is None:
        _app = McpApp()
    return _app
