"""Waiting callers cannot take every web thread: through a real `nexus up`, past NEXUS_WAIT_MAX_PER_TENANT (2 in
the shared installation) a waiting execute gets 202 and the run id at once, and an MCP call that would wait
answers at once too (the cap is one per tenant across web and realtime processes); the REST API keeps
answering, and the runs still finish on the worker."""

import asyncio
import threading
import time
import urllib.error
import urllib.request

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW = {
    "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 3}}],
    "outputs": {"waited": "nodes.wait"},
}
CAP = 2


def _mcp_run(nexus, key: str) -> tuple[float, object]:
    async def scenario():
        client_http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
        async with Client(streamable_http_client(f"{nexus.base_url}/mcp", http_client=client_http)) as client:
            started = time.monotonic()
            result = await client.call_tool("run_workflow", {"workflow": "slow-wait", "inputs": {}})
            return time.monotonic() - started, result

    return asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def _realtime_ready(nexus, timeout: float = 30) -> None:
    """/health answers from the web process; HAProxy sends /mcp to daphne only once its check passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{nexus.base_url}/mcp", data=b"{}", method="POST")
        try:
            urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 (our own http URL)
        except urllib.error.HTTPError as error:
            if error.code == 401:  # daphne answering: no credential
                return
        time.sleep(0.25)
    raise AssertionError("/mcp never answered")


def test_waits_past_the_tenant_cap_answer_at_once_and_the_api_keeps_answering(nexus):
    _realtime_ready(nexus)
    key = nexus.credentials["api_key"]
    api = f"{nexus.base_url}/api/v1"
    status, body = http("POST", f"{api}/workflows/", {"slug": "slow-wait", "definition": SLOW}, key=key)
    assert status == 201, body
    assert http("POST", f"{api}/workflows/slow-wait/deploy/", {}, key=key)[0] == 200
    answers: list[tuple[float, int, dict]] = []

    def execute() -> None:
        started = time.monotonic()
        status, body = http("POST", f"{api}/workflows/slow-wait/execute/", {"inputs": {}, "wait": True}, key=key, timeout=60)
        answers.append((time.monotonic() - started, status, body))

    # given CAP callers waiting on the slow workflow
    waiters = [threading.Thread(target=execute) for _ in range(CAP)]
    for waiter in waiters:
        waiter.start()
    time.sleep(0.7)
    # when one more caller asks to wait through the REST API, another through MCP, and someone lists workflows
    execute()
    mcp_elapsed, mcp_result = _mcp_run(nexus, key)
    listed_started = time.monotonic()
    listed_status, listed = http("GET", f"{api}/workflows/", key=key, timeout=10)
    listed_s = time.monotonic() - listed_started
    for waiter in waiters:
        waiter.join(timeout=60)

    # then the extra REST caller got 202 at once, the run queued, and why
    capped_s, capped_status, capped = answers[0]
    assert capped_status == 202 and capped_s < 1.0, (capped_s, capped)
    assert capped["wait"] == "capped" and capped["status"] in ("queued", "running") and capped["result"] is None
    # and so did the MCP caller: the run's envelope at once, marked capped (not a tool error)
    assert mcp_elapsed < 1.0, mcp_elapsed
    assert not mcp_result.is_error, mcp_result.content
    assert mcp_result.structured_content["wait"] == "capped"
    assert mcp_result.structured_content["status"] in ("queued", "running")
    # and the REST API answered at once meanwhile
    assert listed_status == 200 and "slow-wait" in {w["slug"] for w in listed["results"]}
    assert listed_s < 1.0, listed_s
    # and the callers within the cap waited for their runs' results
    assert len(answers) == CAP + 1
    for elapsed, status, body in answers[1:]:
        assert status == 200 and body["status"] == "completed" and "wait" not in body and elapsed >= 3.0, body
    # and the capped runs go on to finish on the worker, like any run whose wait ran out
    for run_id in (capped["execution_id"], mcp_result.structured_content["execution_id"]):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, run = http("GET", f"{api}/executions/{run_id}/", key=key)
            if run["status"] == "completed":
                break
            time.sleep(0.25)
        assert status == 200 and run["status"] == "completed", run
