"""One credential rule on all three doors: with both headers, `X-API-Key` wins over `Authorization: Bearer …`,
on the REST API, on /mcp and on a WebSocket alike (apps/accounts/credentials.py)."""

import httpx2
import pytest
import pytest_asyncio
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connections

from apps.mcp_bridge.asgi import McpApp
from apps.realtime.routing import websocket_application

pytestmark = pytest.mark.django_db

BAD = "nxk_00000000_not-a-real-key"


@pytest.fixture
def no_persistent_connections():
    settings_dict = connections.settings["default"]
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 0
    yield
    settings_dict["CONN_MAX_AGE"] = before


@pytest_asyncio.fixture
async def mcp_app(no_persistent_connections):
    app = McpApp(allowed_hosts=["127.0.0.1"])
    yield app
    await app.stop()


def test_rest_the_key_header_wins(client, nexus_world):
    key = nexus_world["keys"][("acme", "viewer")]
    kept = client.get("/api/v1/executions/", HTTP_X_API_KEY=key, HTTP_AUTHORIZATION=f"Bearer {BAD}")
    assert kept.status_code == 200
    refused = client.get("/api/v1/executions/", HTTP_X_API_KEY=BAD, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert refused.status_code == 401


@pytest.mark.asyncio
async def test_mcp_the_key_header_wins(mcp_app, nexus_world):
    key = nexus_world["keys"][("acme", "viewer")]
    transport = httpx2.ASGITransport(app=mcp_app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000", timeout=30) as http:
        # GET answers 405 to an authenticated caller, 401 to anyone else
        kept = await http.get("/mcp", headers={"x-api-key": key, "authorization": f"Bearer {BAD}"})
        refused = await http.get("/mcp", headers={"x-api-key": BAD, "authorization": f"Bearer {key}"})
    assert (kept.status_code, refused.status_code) == (405, 401)


def test_websocket_the_key_header_wins(nexus_world, monkeypatch):
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    key = nexus_world["keys"][("acme", "viewer")]

    async def opened(headers: list[tuple[bytes, bytes]]) -> int | None:
        communicator = WebsocketCommunicator(websocket_application(), "/ws/tenant/", headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        if await communicator.receive_nothing(timeout=0.3):
            await communicator.disconnect()
            return None
        message = await communicator.receive_output(timeout=3)
        await communicator.disconnect()
        return message["code"]

    async def scenario():
        kept = await opened([(b"x-api-key", key.encode()), (b"authorization", f"Bearer {BAD}".encode())])
        refused = await opened([(b"x-api-key", BAD.encode()), (b"authorization", f"Bearer {key}".encode())])
        return kept, refused

    assert async_to_sync(scenario)() == (None, 4401)
