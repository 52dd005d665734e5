"""/mcp as an ASGI app in-process: Host/Origin checks, credentials (401 + WWW-Authenticate), the RFC 9728 document,
and the official SDK client talking to it (tools/list, a tool error, an unknown tool) over Streamable HTTP."""

import httpx2
import pytest
import pytest_asyncio
from django.db import connections
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from apps.mcp_bridge.asgi import McpApp, host_allowed, request_allowed

PATTERNS = ["127.0.0.1", "localhost", ".localhost", "[::1]"]
BASE = "http://127.0.0.1:8000"


@pytest.fixture
def no_persistent_connections():
    """As in the ASGI process (asgi.py): every call's connection is released, none outlives its thread."""
    settings_dict = connections.settings["default"]
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = before


@pytest_asyncio.fixture
async def mcp_app(no_persistent_connections):
    app = McpApp(allowed_hosts=PATTERNS)
    yield app
    await app.stop()


def _http(app, **headers) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url=BASE, headers=headers, timeout=30)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("acme.localhost", True),
        ("deep.acme.localhost", True),
        ("[::1]", True),
        ("localhost.evil.test", False),
        ("evillocalhost", False),
        ("attacker.example", False),
        ("", False),
    ],
)
def test_host_patterns(host, allowed):
    assert host_allowed(host, PATTERNS) is allowed


def test_dns_rebinding_checks_host_and_origin():
    assert request_allowed({"host": "127.0.0.1:8000"}, PATTERNS) is None
    assert request_allowed({"host": "acme.localhost:8000", "origin": "http://acme.localhost:8000"}, PATTERNS) is None
    assert request_allowed({"host": "[::1]:8000"}, PATTERNS) is None
    assert request_allowed({"host": "evil.test:8000"}, PATTERNS) == (421, "Invalid Host header")
    assert request_allowed({"host": "localhost:8000", "origin": "http://evil.test"}, PATTERNS) == (403, "Invalid Origin header")
    assert request_allowed({"host": "localhost:8000", "origin": "null"}, PATTERNS) == (403, "Invalid Origin header")


@pytest.mark.asyncio
async def test_no_credential_is_401_with_the_resource_metadata(mcp_app):
    async with _http(mcp_app) as http:
        response = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer resource_metadata="http://127.0.0.1:8000/.well-known/oauth-protected-resource/mcp"'
    )
    assert response.json() == {"detail": "authentication credentials were not provided", "code": "not_authenticated"}


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_a_bad_credential_is_401_invalid_token(mcp_app, nexus_world):
    async with _http(mcp_app, authorization="Bearer nxk_00000000_not-a-real-key") as http:
        response = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert response.json()["code"] == "invalid_credentials"


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_get_is_405_stateless_servers_offer_no_stream(mcp_app, nexus_world):
    key = nexus_world["keys"][("acme", "viewer")]
    async with _http(mcp_app, authorization=f"Bearer {key}", accept="text/event-stream") as http:
        response = await http.get("/mcp")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


@pytest.mark.asyncio
async def test_a_foreign_host_is_refused_before_anything_else(mcp_app):
    async with _http(mcp_app, host="attacker.example") as http:
        response = await http.post("/mcp", json={})
    assert response.status_code == 421


@pytest.mark.django_db
def test_the_protected_resource_metadata_is_public(client):
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        response = client.get(path, HTTP_HOST="acme.localhost:8000")
        assert response.status_code == 200
        assert response.json() == {
            "resource": "http://acme.localhost:8000/mcp",
            "resource_name": "Nexus MCP server",
            "bearer_methods_supported": ["header"],
            "resource_documentation": "http://acme.localhost:8000/api/docs/",
        }


@pytest.mark.asyncio
@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_sdk_client_lists_tools_and_gets_errors_as_tool_errors(mcp_app, nexus_world, mode):
    # given a viewer key of globex (keys are committed by the session fixture; no workflow is deployed there)
    key = nexus_world["keys"][("globex", "viewer")]
    http = _http(mcp_app, authorization=f"Bearer {key}")
    async with Client(streamable_http_client(f"{BASE}/mcp", http_client=http), mode=mode) as client:
        # when / then: the platform tools, and refusals that leave the connection usable
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"list_workflows", "run_workflow", "compute_metrics", "send_email_report"} <= names
        assert not any(name.startswith("workflow_") for name in names)
        refused = await client.call_tool("run_workflow", {"workflow": "hello-world", "inputs": {}})
        assert refused.is_error and "permission_denied" in refused.content[0].text
        with pytest.raises(MCPError, match="Unknown tool: workflow_hello-world"):
            await client.call_tool("workflow_hello-world", {"name": "x"})
        metrics = await client.call_tool("compute_metrics", {"rows": [{"v": 2}, {"v": 4}], "field": "v", "metrics": ["mean"]})
        assert not metrics.is_error and metrics.structured_content == {"mean": 3.0}
    # and every call, refused ones included, left an audit row naming the tool, the channel and the outcome
    from asgiref.sync import sync_to_async

    from apps.audit.models import AuditEvent

    def audited():
        rows = AuditEvent.objects.filter(
            action="tool.called", actor__startswith="apikey:", tenant_id=nexus_world["tenants"]["globex"].pk
        )
        return {(row.target, row.outcome, row.channel) for row in rows}

    assert {
        ("run_workflow", "denied", "mcp"),
        ("workflow_hello-world", "error", "mcp"),
        ("compute_metrics", "success", "mcp"),
    } <= (await sync_to_async(audited)())
