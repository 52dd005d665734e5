"""MCP through real processes: the official `mcp` SDK client (and the MCP Inspector CLI from npm) against /mcp
behind HAProxy, served by daphne, runs on the Celery worker, mail to the local SMTP server."""

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
import uuid
from contextlib import asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.conftest import CACHE_WAIT_S, REPO

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PLATFORM_TOOLS = {
    "list_workflows",
    "describe_workflow",
    "run_workflow",
    "get_execution",
    "list_executions",
    "cancel_execution",
    "list_datasets",
    "query_dataset",
    "compute_metrics",
    "render_chart",
    "send_email_report",
    "session_info",
}
SALES = "customer,region,revenue\nAcme,eu,1200\nGlobex,us,800\nInitech,us,450\nUmbrella,eu,1550\n"


@asynccontextmanager
async def mcp(nexus, key: str):
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with Client(streamable_http_client(f"{nexus.base_url}/mcp", http_client=http)) as client:
        yield client


def run(scenario, timeout: float = 120):
    """Every scenario is bounded in time."""
    return asyncio.run(asyncio.wait_for(scenario, timeout=timeout))


def ensure_deployed(nexus, slug: str, template: str, *tenant: str) -> None:
    """Create (unless an earlier test of the session did) and deploy a workflow with the CLI."""
    created = nexus.cli("create", "workflow", slug, f"--template={template}", *tenant, "--json")
    assert created.returncode == 0 or "already exists" in created.stderr, created.stderr
    nexus.cli_json("deploy", slug, *tenant)


async def tool_names(client, expected: str | None = None, timeout: float = 6.0) -> set[str]:
    """tools/list; when `expected` is given, wait (bounded) for it: another process's deployment shows within the
    deployment cache's lifetime (NEXUS_DEPLOYMENT_CACHE_S)."""
    deadline = time.monotonic() + timeout
    while True:
        names = {tool.name for tool in (await client.list_tools()).tools}
        if expected is None or expected in names or time.monotonic() > deadline:
            return names
        await asyncio.sleep(0.25)


def new_tenant(nexus, prefix: str) -> tuple[str, str]:
    """A fresh tenant and an owner key for it, made with the CLI."""
    slug = f"{prefix}-{uuid.uuid4().hex[:6]}"
    nexus.cli_json("tenant", "create", slug)
    key = nexus.cli_json("apikey", "create", "--role", "owner", "--tenant", slug)["key"]
    return slug, key


def test_discovery_structured_calls_and_argument_errors(nexus):
    # given hello-world created and deployed with the CLI
    ensure_deployed(nexus, "hello-world", "basic")
    key = nexus.credentials["api_key"]

    async def scenario():
        async with mcp(nexus, key) as client:
            # stateless: no standing stream to announce list changes on, and the server says so
            assert not client.server_capabilities.tools.list_changed
            names = await tool_names(client, "workflow_hello-world")
            assert PLATFORM_TOOLS | {"workflow_hello-world"} <= names and len(names) >= 10
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            hello = listed["workflow_hello-world"]
            assert hello.input_schema["required"] == ["name"] and hello.output_schema["type"] == "object"
            assert listed["list_workflows"].annotations.read_only_hint is True
            assert listed["cancel_execution"].annotations.destructive_hint is True

            result = await client.call_tool("workflow_hello-world", {"name": "MCP"})
            assert not result.is_error
            assert result.structured_content == {"message": "Hello, MCP!"}
            assert json.loads(result.content[0].text.split("\n\n")[0]) == {"message": "Hello, MCP!"}
            run_id = result.meta["nexus/execution"]["id"]

            missing = await client.call_tool("workflow_hello-world", {})
            assert missing.is_error and "inputs.name" in missing.content[0].text and "required" in missing.content[0].text
            wrong = await client.call_tool("workflow_hello-world", {"name": 5})
            assert wrong.is_error and "inputs.name: 5 is not of type 'string'" in wrong.content[0].text
            bad_args = await client.call_tool("run_workflow", {"inputs": {"name": "x"}})
            assert bad_args.is_error and "workflow: 'workflow' is a required property" in bad_args.content[0].text
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool("workflow_no-such-flow", {})
            # the session is still usable after every refusal
            again = await client.call_tool("workflow_hello-world", {"name": "again"})
            assert again.structured_content == {"message": "Hello, again!"}

            queued = await client.call_tool("run_workflow", {"workflow": "hello-world", "inputs": {"name": "L"}, "wait": False})
            assert not queued.is_error and queued.structured_content["status"] == "queued"
            return run_id, again.meta["nexus/execution"]["id"], queued.structured_content["execution_id"]

    first, second, queued = run(scenario())
    history = nexus.cli_json("history", "--channel", "mcp", "--limit", "50")
    mcp_runs = {e["id"]: e for e in history["executions"]}
    assert {first, second, queued} <= set(mcp_runs)
    assert all(e["channel"] == "mcp" for e in history["executions"])
    assert mcp_runs[first]["outputs"] == {"message": "Hello, MCP!"} and mcp_runs[first]["status"] == "completed"


def test_no_credential_is_401_with_where_to_learn_how_to_authenticate(nexus):
    with httpx2.Client(base_url=nexus.base_url, timeout=10) as http:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        response = http.post("/mcp", json=body, headers={"Accept": "application/json, text/event-stream"})
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        metadata_url = f"{nexus.base_url}/.well-known/oauth-protected-resource/mcp"
        assert challenge == f'Bearer resource_metadata="{metadata_url}"'
        document = http.get(metadata_url)
        assert document.status_code == 200
        assert document.json()["resource"] == f"{nexus.base_url}/mcp"
        assert document.json()["bearer_methods_supported"] == ["header"]
        assert http.get("/.well-known/oauth-protected-resource").json()["resource"] == f"{nexus.base_url}/mcp"

        bad = http.post("/mcp", json=body, headers={"Authorization": "Bearer nxk_00000000_nope"})
        assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["www-authenticate"]
        rebinding = http.post("/mcp", json=body, headers={"Authorization": "Bearer x", "Host": "attacker.example"})
        assert rebinding.status_code == 421


def test_a_viewer_lists_and_describes_but_cannot_run(nexus):
    ensure_deployed(nexus, "hello-world", "basic")
    viewer = nexus.cli_json("apikey", "create", "--role", "viewer")["key"]
    before = nexus.cli_json("history", "--limit", "1")["count"]

    async def scenario():
        async with mcp(nexus, viewer) as client:
            assert "workflow_hello-world" in await tool_names(client, "workflow_hello-world")
            described = await client.call_tool("describe_workflow", {"workflow": "hello-world"})
            assert not described.is_error and described.structured_content["tool"] == "workflow_hello-world"
            for name, arguments in [
                ("workflow_hello-world", {"name": "V"}),
                ("run_workflow", {"workflow": "hello-world", "inputs": {"name": "V"}}),
            ]:
                refused = await client.call_tool(name, arguments)
                assert refused.is_error, name
                assert "role 'viewer' may not workflow execute (permission_denied)" in refused.content[0].text
            listed = await client.call_tool("list_executions", {"limit": 1})
            assert not listed.is_error

    run(scenario())
    assert nexus.cli_json("history", "--limit", "1")["count"] == before


def test_another_tenants_workflow_is_never_seen_nor_called(nexus):
    tenant_a, key_a = new_tenant(nexus, "mcp-a")
    tenant_b, key_b = new_tenant(nexus, "mcp-b")
    ensure_deployed(nexus, "data-processor", "data-processor", "--tenant", tenant_a)
    workflow_id = nexus.cli_json("workflow", "show", "data-processor", "--tenant", tenant_a)["id"]
    rows = [{"id": 1, "category": "books", "amount": 10}, {"id": 2, "category": "toys", "amount": 5}, {"id": 3, "amount": -1}]

    async def scenario():
        async with mcp(nexus, key_a) as a:
            assert "workflow_data-processor" in await tool_names(a, "workflow_data-processor")
            done = await a.call_tool("workflow_data-processor", {"rows": rows})
            assert not done.is_error, done.content[0].text
            assert done.structured_content["accepted"] == 2 and done.structured_content["total"] == 15
            run_a = done.meta["nexus/execution"]["id"]
        async with mcp(nexus, key_b) as b:
            names = await tool_names(b)
            assert names == PLATFORM_TOOLS  # nothing deployed in B
            with pytest.raises(MCPError, match="Unknown tool: workflow_data-processor"):
                await b.call_tool("workflow_data-processor", {"rows": rows})
            for name, arguments, code in [
                ("run_workflow", {"workflow": "data-processor", "inputs": {"rows": rows}}, "workflow_not_found"),
                ("run_workflow", {"workflow": workflow_id, "inputs": {"rows": rows}}, "workflow_not_found"),
                ("describe_workflow", {"workflow": workflow_id}, "workflow_not_found"),
                ("get_execution", {"execution_id": run_a}, "execution_not_found"),
                ("cancel_execution", {"execution_id": run_a}, "execution_not_found"),
            ]:
                refused = await b.call_tool(name, arguments)
                assert refused.is_error and f"({code})" in refused.content[0].text, (name, refused.content[0].text)
                assert "books" not in refused.content[0].text
            listed = await b.call_tool("list_workflows", {})
            assert listed.structured_content == {"count": 0, "workflows": []}

    run(scenario())
    assert nexus.cli_json("history", "--tenant", tenant_b)["count"] == 0
    assert nexus.cli_json("history", "--tenant", tenant_a, "--channel", "mcp")["count"] == 1


def _wait_for_mail(mailbox, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(mailbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(mailbox.messages) >= count, f"{len(mailbox.messages)} messages received"


def test_an_agent_queries_computes_charts_emails_and_runs_a_report(nexus, mailbox, tmp_path):
    # given a tenant with a sales dataset uploaded with the CLI, and the customer-report template deployed
    tenant, key = new_tenant(nexus, "mcp-agent")
    csv_path = tmp_path / "sales.csv"
    csv_path.write_text(SALES)
    assert nexus.cli_json("dataset", "upload", "sales", f"--file={csv_path}", "--tenant", tenant)["row_count"] == 4
    ensure_deployed(nexus, "weekly-report", "customer-report", "--tenant", tenant)
    before = len(mailbox.messages)
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async def scenario():
        async with mcp(nexus, key) as agent:
            datasets = await agent.call_tool("list_datasets", {})
            assert [d["name"] for d in datasets.structured_content["datasets"]] == ["sales"]
            by_region = await agent.call_tool(
                "query_dataset",
                {
                    "dataset": "sales",
                    "group_by": ["region"],
                    "aggregates": [{"fn": "sum", "field": "revenue", "as": "revenue"}],
                    "order_by": [{"field": "revenue", "desc": True}],
                },
            )
            assert by_region.structured_content["rows"] == [{"region": "eu", "revenue": 2750}, {"region": "us", "revenue": 1250}]
            every = await agent.call_tool("query_dataset", {"dataset": "sales"})
            metrics = await agent.call_tool(
                "compute_metrics",
                {"rows": every.structured_content["rows"], "field": "revenue", "metrics": ["count", "sum", "max", "p50"]},
            )
            assert metrics.structured_content == {"count": 4, "sum": 4000, "max": 1550, "p50": 1000.0}
            chart = await agent.call_tool(
                "render_chart",
                {
                    "rows": by_region.structured_content["rows"],
                    "kind": "bar",
                    "x": "region",
                    "y": "revenue",
                    "name": "regions.png",
                },
            )
            assert not chart.is_error, chart.content[0].text
            artifact_id = chart.structured_content["artifact_id"]
            sent = await agent.call_tool(
                "send_email_report",
                {
                    "to": "cfo@example.test",
                    "subject": f"Revenue: {metrics.structured_content['sum']}",
                    "body": "Revenue by region attached.",
                    "artifact_ids": [artifact_id],
                },
            )
            assert not sent.is_error, sent.content[0].text
            # a long (worker) run, waited on with a progress token, against a dataset that does not exist
            report = await agent.call_tool(
                "workflow_weekly-report",
                {"recipient": "cfo@example.test", "dataset": "no-such-dataset"},
                progress_callback=on_progress,
            )
            assert not report.is_error, report.content[0].text
            assert report.meta["nexus/execution"]["status"] == "completed_with_recovery"
            assert report.structured_content["customers"] == 0
            assert "node 'fetch' failed (dataset_not_found" in report.content[0].text
            assert "fallback 'no_data' ran" in report.content[0].text
            detail = await agent.call_tool("get_execution", {"execution_id": report.meta["nexus/execution"]["id"]})
            return artifact_id, detail.structured_content

    artifact_id, run_detail = run(scenario())
    assert run_detail["channel"] == "mcp" and run_detail["status"] == "completed_with_recovery"
    assert run_detail["recovery"][0]["node"] == "fetch" and run_detail["recovery"][0]["fallback"] == "no_data"
    assert run_detail["recovery"][0]["error"]["code"] == "dataset_not_found"
    assert progress and progress[-1][1] == 5.0 and all(b[0] >= a[0] for a, b in zip(progress, progress[1:], strict=False))

    _wait_for_mail(mailbox, before + 2)
    received = mailbox.messages[before:]
    agent_mail = next(m for m in received if m["message"]["Subject"] == "Revenue: 4000")
    assert agent_mail["to"] == ["cfo@example.test"]
    attachments = [part for part in agent_mail["message"].walk() if part.get_content_disposition() == "attachment"]
    assert [a.get_filename() for a in attachments] == ["regions.png"]
    assert attachments[0].get_payload(decode=True).startswith(b"\x89PNG")
    assert any(m["message"]["Subject"] == "Customer report: 0 customers" for m in received)

    request = urllib.request.Request(
        f"{nexus.base_url}/api/v1/artifacts/{artifact_id}/", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.load(response)["name"] == "regions.png"


def test_the_cli_lists_the_same_tools_and_prints_client_configurations(nexus):
    ensure_deployed(nexus, "hello-world", "basic")
    listed = nexus.cli_json("mcp", "tools")
    names = {tool["name"] for tool in listed["tools"]}
    assert PLATFORM_TOOLS | {"workflow_hello-world"} <= names and listed["count"] == len(names)
    hello = next(tool for tool in listed["tools"] if tool["name"] == "workflow_hello-world")
    assert hello["inputSchema"]["required"] == ["name"] and hello["annotations"]["readOnlyHint"] is False

    config = nexus.cli_json("mcp", "config")
    url = f"http://127.0.0.1:{nexus.port}/mcp"
    assert config["url"] == url and config["headers"] == {"Authorization": "Bearer <YOUR_NXK_KEY>"}
    assert config["mcpServers"]["nexus"] == {"url": url, "headers": {"Authorization": "Bearer <YOUR_NXK_KEY>"}}
    with_key = nexus.cli_json("mcp", "config", "--key", "nxk_given_key", "--url", "https://nexus.example/mcp")
    assert with_key["mcpServers"]["nexus"]["headers"]["Authorization"] == "Bearer nxk_given_key"
    assert with_key["url"] == "https://nexus.example/mcp"
    assert nexus.credentials["api_key"] not in json.dumps(config)


def test_the_mcp_inspector_cli_lists_and_calls_tools(nexus):
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx (Node.js) is not installed: the MCP Inspector CLI cannot run")
    ensure_deployed(nexus, "hello-world", "basic")
    key = nexus.credentials["api_key"]
    base = [npx, "-y", "@modelcontextprotocol/inspector@2", "--cli", f"{nexus.base_url}/mcp", "--transport", "http"]
    auth = ["--header", f"Authorization: Bearer {key}"]
    time.sleep(CACHE_WAIT_S)  # the deployment is visible in every process after the deployment cache's lifetime

    listed = subprocess.run([*base, "--method", "tools/list", *auth], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert listed.returncode == 0, listed.stderr[-2000:]
    names = {tool["name"] for tool in json.loads(listed.stdout)["tools"]}
    assert PLATFORM_TOOLS | {"workflow_hello-world"} <= names

    called = subprocess.run(
        [*base, "--method", "tools/call", "--tool-name", "workflow_hello-world", "--tool-arg", "name=Inspector", *auth],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=REPO,
    )
    assert called.returncode == 0, called.stderr[-2000:]
    result = json.loads(called.stdout)
    assert result["structuredContent"] == {"message": "Hello, Inspector!"} and result["isError"] is False

    unauthenticated = subprocess.run([*base, "--method", "tools/list"], capture_output=True, text=True, timeout=240, cwd=REPO)
    assert unauthenticated.returncode != 0


def _audit_rows(nexus, key: str, request_id: str) -> list[dict]:
    request = urllib.request.Request(f"{nexus.base_url}/api/v1/audit/?limit=200", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own http URL)
        rows = json.load(response)["results"]
    return [row for row in rows if row["request_id"] == request_id]


def test_audit_rows_record_the_address_haproxy_saw_not_a_forged_forwarded_for(nexus):
    # given a client that sends its own X-Forwarded-For through HAProxy (which appends the real peer, loopback)
    ensure_deployed(nexus, "hello-world", "basic")
    key = nexus.credentials["api_key"]
    mcp_request, rest_request = f"ip-mcp-{uuid.uuid4().hex[:8]}", f"ip-rest-{uuid.uuid4().hex[:8]}"

    async def scenario():
        headers = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "6.6.6.6", "X-Request-ID": mcp_request}
        async with Client(streamable_http_client(f"{nexus.base_url}/mcp", http_client=httpx2.AsyncClient(headers=headers))) as c:
            result = await c.call_tool("workflow_hello-world", {"name": "ip"})
            assert not result.is_error, result.content

    # when it runs a workflow through MCP, and through the REST API
    run(scenario())
    request = urllib.request.Request(
        f"{nexus.base_url}/api/v1/workflows/hello-world/execute/",
        data=json.dumps({"inputs": {"name": "ip"}}).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "X-Forwarded-For": "6.6.6.6",
            "X-Request-ID": rest_request,
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (our own http URL)
        assert response.status == 200
    # then every audit row of either call names the address HAProxy saw, never the forged one
    mcp_rows = _audit_rows(nexus, key, mcp_request)
    assert {(row["channel"], row["ip"]) for row in mcp_rows} == {("mcp", "127.0.0.1")}
    assert {row["action"] for row in mcp_rows} == {"execution.completed", "tool.called"}
    rest_rows = _audit_rows(nexus, key, rest_request)
    assert [(row["action"], row["channel"], row["ip"]) for row in rest_rows] == [("execution.completed", "api", "127.0.0.1")]
