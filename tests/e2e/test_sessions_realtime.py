"""Sessions and realtime events through real processes: API, CLI (NEXUS_SESSION), WebSocket via HAProxy → daphne."""

import asyncio
import json
import time

import httpx2
import pytest
import websockets
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def _next_events(ws, count: int, timeout: float) -> list[dict]:
    events = []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        events.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=max(0.01, deadline - time.monotonic()))))
    return events


def test_session_events_reach_websocket_subscribers(nexus):
    key = nexus.credentials["api_key"]
    api = f"{nexus.base_url}/api/v1"
    ws_base = nexus.base_url.replace("http://", "ws://") + "/ws"
    status, session = http("POST", f"{api}/sessions/", {"user": "e2e-user", "metadata": {"via": "e2e"}}, key=key)
    assert status == 201 and session["id"].startswith("ses_")
    session_id = session["id"]
    env = {"NEXUS_SESSION": session_id}
    info = nexus.cli_json("session", "info", env=env)
    assert info["id"] == session_id and info["user"] == "e2e-user"
    assert nexus.cli_json("tenant", "create", "rival")["slug"] == "rival"
    rival_key = nexus.cli_json("apikey", "create", "--tenant", "rival", "--role", "owner")["key"]

    async def scenario():
        headers = {"Authorization": f"Bearer {key}"}
        async with websockets.connect(f"{ws_base}/sessions/{session_id}/", additional_headers=headers) as ws:
            started = time.monotonic()
            created = nexus.cli("workflow", "create", "session-hello", "--template=basic", "--json", env=env)
            assert created.returncode == 0, created.stderr
            [cli_event] = await _next_events(ws, 1, timeout=5)
            assert (cli_event["type"], cli_event["source"], cli_event["session"]) == ("workflow.created", "cli", session_id)
            assert nexus.cli("deploy", "session-hello", "--json", env=env).returncode == 0
            [deployed] = await _next_events(ws, 1, timeout=5)
            assert (deployed["type"], deployed["source"]) == ("workflow.deployed", "cli")
            sent = time.monotonic()
            status, run = http(
                "POST", f"{api}/workflows/session-hello/execute/", {"inputs": {"name": "E2E"}, "session": session_id}, key=key
            )
            assert status == 200, run
            [api_event] = await _next_events(ws, 1, timeout=1.0)
            assert time.monotonic() - sent < 1.0
            assert (api_event["type"], api_event["source"], api_event["tenant"]) == ("execution.completed", "api", "default")
            assert api_event["data"]["execution_id"] == run["execution_id"]
            assert set(api_event) == {"id", "type", "source", "tenant", "session", "ts", "data"}
            # An agent over MCP, bound to the session by header: its run and its event carry channel/source mcp.
            mcp_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}", "X-Nexus-Session": session_id}, timeout=30)
            async with Client(streamable_http_client(f"{nexus.base_url}/mcp", http_client=mcp_http)) as agent:
                sent = time.monotonic()
                result = await agent.call_tool("workflow_session-hello", {"name": "Agent"})
                assert not result.is_error, result
                [mcp_event] = await _next_events(ws, 1, timeout=1.0)
                assert time.monotonic() - sent < 1.0
            assert (mcp_event["type"], mcp_event["source"], mcp_event["session"]) == (
                "execution.completed",
                "mcp",
                session_id,
            )
            assert mcp_event["data"]["outputs"] == {"message": "Hello, Agent!"}
            mcp_run = mcp_event["data"]["execution_id"]
            assert time.monotonic() - started < 30
            last_seen = mcp_event["id"]
        # Missed while disconnected: a CLI run, then replayed on reconnect with `since`.
        cli_run = nexus.cli_json("run", "session-hello", "--input", '{"name": "Missed"}', env=env)
        async with websockets.connect(f"{ws_base}/sessions/{session_id}/?since={last_seen}&token={key}") as ws:
            [replayed] = await _next_events(ws, 1, timeout=5)
            assert (replayed["type"], replayed["source"]) == ("execution.completed", "cli")
            assert replayed["data"]["execution_id"] == cli_run["execution_id"]
        # Another tenant's key: the session does not exist for it.
        async with websockets.connect(f"{ws_base}/sessions/{session_id}/?token={rival_key}") as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=5)  # a message here would be another tenant's
            assert closed.value.rcvd.code == 4404
        return run["execution_id"], mcp_run, cli_run["execution_id"]

    api_run, mcp_run, cli_run = asyncio.run(scenario())
    status, listed = http("GET", f"{api}/sessions/{session_id}/executions/", key=key)
    assert status == 200
    assert [(r["id"], r["channel"]) for r in listed["results"]] == [(cli_run, "cli"), (mcp_run, "mcp"), (api_run, "api")]
    status, mcp_only = http("GET", f"{api}/executions/?session={session_id}&channel=mcp", key=key)
    assert status == 200 and [r["id"] for r in mcp_only["results"]] == [mcp_run]
    history = nexus.cli_json("session", "history", env=env)
    assert [r["id"] for r in history["executions"]] == [cli_run, mcp_run, api_run]
