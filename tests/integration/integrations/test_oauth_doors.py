"""OAuth2 access tokens at every door: principal_from_credential (HTTP, MCP, WebSocket) resolves `nxo_` tokens to
the application, never past their expiry; the WebSocket and MCP endpoints accept them.

The WebSocket and MCP scenarios run under async_to_sync from these (sync) tests, so the doors' database work
runs back on this thread, inside the test's transaction, where the token was issued."""

import time
from datetime import timedelta

import httpx2
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.utils import timezone
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from oauth2_provider.models import AccessToken

from apps.accounts.access import can
from apps.accounts.selectors import hash_key, oauth_token_cache, principal_from_credential
from apps.core.errors import NotAuthenticated

pytestmark = pytest.mark.django_db


def _expire(token: str, *, in_s: float) -> None:
    AccessToken.objects.filter(token_checksum=hash_key(token)).update(expires=timezone.now() + timedelta(seconds=in_s))
    oauth_token_cache.clear()


def test_a_token_resolves_to_its_application_with_its_scopes(register, token_for):
    app = register(name="door", scopes=["workflows:read", "executions:read"], rate_limit_per_minute=30)
    principal, tenant = principal_from_credential(token_for(app, scope="workflows:read"))
    assert (principal.kind, principal.actor, principal.role) == ("application", f"app:{app['id']}", "operator")
    assert tenant.slug == "acme"
    assert principal.application_id == app["id"] and principal.api_key_id is None
    assert principal.scopes == frozenset({"workflows:read"}) and principal.rate_limit_per_minute == 30
    assert can(principal, "workflow.read") and not can(principal, "execution.read")
    by_key, _ = principal_from_credential(app["api_key"])
    assert by_key.actor == f"app:{app['id']}" and by_key.api_key_id == app["api_key_id"]
    assert by_key.scopes == frozenset({"workflows:read", "executions:read"})


def test_an_unrestricted_applications_key_carries_no_scopes(register):
    app = register(name="wide")
    principal, _ = principal_from_credential(app["api_key"])
    assert principal.scopes is None and principal.application_id == app["id"]


def test_an_expired_token_is_refused(register, token_for):
    app = register(name="old")
    token = token_for(app)
    _expire(token, in_s=-1)
    with pytest.raises(NotAuthenticated, match="invalid or expired token"):
        principal_from_credential(token)


def test_a_cached_token_is_never_used_past_its_expiry(register, token_for):
    app = register(name="short")
    token = token_for(app)
    _expire(token, in_s=1.0)
    assert principal_from_credential(token)[0].application_id == app["id"]  # cached now, for up to the TTL
    time.sleep(1.2)
    with pytest.raises(NotAuthenticated):
        principal_from_credential(token)


@pytest.mark.parametrize("raw", ["nxo_", "nxo_unknown", "nxo_" + "a" * 200])
def test_unknown_tokens_are_not_authenticated(nexus_world, raw):
    with pytest.raises(NotAuthenticated):
        principal_from_credential(raw)


@pytest.fixture
def _keep_test_connection(monkeypatch):
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    monkeypatch.setattr("apps.mcp_bridge.asgi.close_old_connections", lambda: None)
    monkeypatch.setattr("apps.mcp_bridge.server.close_old_connections", lambda: None)


@pytest.mark.usefixtures("_keep_test_connection")
def test_the_websocket_accepts_a_token_and_refuses_a_revoked_one(register, token_for, oauth):
    from apps.realtime.routing import websocket_application

    app = register(name="socket", scopes=["executions:read"])
    token = token_for(app)
    reader = register(name="no executions", scopes=["workflows:read"])
    narrow = token_for(reader)

    def connect(raw: str):
        headers = [(b"authorization", f"Bearer {raw}".encode())]
        return WebsocketCommunicator(websocket_application(), "/ws/tenant/", headers=headers)

    async def outcome(raw: str):
        communicator = connect(raw)
        connected, _ = await communicator.connect()
        assert connected
        message = await communicator.receive_output(timeout=3) if not await communicator.receive_nothing(timeout=0.3) else None
        await communicator.disconnect()
        return message["code"] if message and message["type"] == "websocket.close" else "open"

    assert async_to_sync(outcome)(token) == "open"
    assert async_to_sync(outcome)(narrow) == 4403
    assert oauth("revoke_token", app["client_id"], app["client_secret"], token=token).status_code == 200
    assert async_to_sync(outcome)(token) == 4401


@pytest.mark.usefixtures("_keep_test_connection")
def test_mcp_accepts_a_token_and_applies_its_scopes(register, token_for):
    from apps.mcp_bridge.asgi import McpApp

    app = register(name="mcp", scopes=["workflows:read"])
    token = token_for(app)

    async def scenario():
        mcp_app = McpApp(allowed_hosts=["127.0.0.1"])
        http = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=mcp_app),
            base_url="http://127.0.0.1:8000",
            headers={"authorization": f"Bearer {token}"},
            timeout=30,
        )
        try:
            async with Client(streamable_http_client("http://127.0.0.1:8000/mcp", http_client=http)) as client:
                names = {tool.name for tool in (await client.list_tools()).tools}
                listed = await client.call_tool("list_workflows", {})
                refused = await client.call_tool("run_workflow", {"workflow": "hello-world", "inputs": {}})
        finally:
            await mcp_app.stop()
        return names, listed, refused

    names, listed, refused = async_to_sync(scenario)()
    assert {"list_workflows", "run_workflow"} <= names
    assert not listed.is_error
    assert refused.is_error and "executions:run" in refused.content[0].text
