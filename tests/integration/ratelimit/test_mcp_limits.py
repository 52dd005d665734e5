"""/mcp applies the same limits as the REST API, once per HTTP request."""

import httpx2
import pytest
import pytest_asyncio
from django.db import connections

from apps.mcp_bridge.asgi import McpApp

BASE = "http://127.0.0.1:8000"


@pytest_asyncio.fixture
async def mcp_app():
    settings_dict = connections.settings["default"]
    before = settings_dict["CONN_MAX_AGE"]
    settings_dict["CONN_MAX_AGE"] = 0  # as in the ASGI process: no connection outlives its thread
    app = McpApp(allowed_hosts=["127.0.0.1"])
    yield app
    await app.stop()
    settings_dict["CONN_MAX_AGE"] = before


@pytest.mark.asyncio
@pytest.mark.django_db
async def test_mcp_requests_are_limited_with_the_same_headers(mcp_app, nexus_world, limits):
    limits(standard={"credential": 1, "tenant": 1000})
    key = nexus_world["keys"][("globex", "viewer")]
    transport = httpx2.ASGITransport(app=mcp_app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE, headers={"authorization": f"Bearer {key}"}) as http:
        first = await http.get("/mcp")  # stateless: GET is answered 405, after the limits were checked
        second = await http.get("/mcp")
    assert first.status_code == 405
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("1", "0")
    assert second.status_code == 429
    assert second.headers["retry-after"] == "60"
    assert second.json() == {
        "detail": "rate limit exceeded: 1 requests a minute for this API key; retry in 60 s",
        "code": "rate_limited",
        "fields": {},
        "retry_after": 60,
    }
