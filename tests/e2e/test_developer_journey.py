"""The first user journey, through real processes: CLI as a subprocess, the REST API over HTTP via HAProxy."""

import json
import time

import pytest

from tests.e2e.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_zero_config_start_to_history(nexus):
    # Zero-configuration start: healthy, with first credentials written for the person who ran it.
    status, health = http("GET", f"{nexus.base_url}/health")
    assert status == 200 and health["healthy"] is True and health["status"] == "healthy"
    assert health["checks"]["workers"] == {"ok": True}
    key = nexus.credentials["api_key"]
    assert key.startswith("nxk_") and nexus.credentials["tenant"] == "default"
    assert (nexus.data_dir / "credentials.json").stat().st_mode & 0o077 == 0

    created = nexus.cli_json("create", "workflow", "hello-world", "--template=basic")
    workflow_id = created["workflow_id"]
    assert workflow_id.startswith("wf_")

    assert nexus.cli_json("test", workflow_id, '--input={"name": "World"}') == {"message": "Hello, World!"}
    assert nexus.cli_json("deploy", workflow_id)["status"] == "deployed"

    status, body = http(
        "POST", f"{nexus.base_url}/api/v1/workflows/{workflow_id}/execute/", {"inputs": {"name": "Nexus"}}, key=key
    )
    assert status == 200, body
    assert body["result"]["message"] == "Hello, Nexus!"

    history = nexus.cli_json("history", "--limit=2")
    assert len(history["executions"]) == 2
    assert [e["channel"] for e in history["executions"]] == ["api", "cli"]
    assert history["executions"][0]["id"] == body["execution_id"]
    assert [e["outputs"] for e in history["executions"]] == [{"message": "Hello, Nexus!"}, {"message": "Hello, World!"}]

    # Bad input on each channel: a clear error, and nothing half-written.
    url = f"{nexus.base_url}/api/v1/workflows/{workflow_id}/execute/"
    api_cases = [
        (b'{"inputs": {"name": "x"', 400, "malformed_json"),
        (b'{"inputs": {}}', 400, "invalid_inputs"),
        (b'{"inputs": {"name": 5}}', 400, "invalid_inputs"),
    ]
    for raw, expected_status, code in api_cases:
        status, error = http("POST", url, raw=raw, key=key)
        assert (status, error["code"]) == (expected_status, code), error
    status, error = http("POST", f"{nexus.base_url}/api/v1/workflows/no-such-flow/execute/", {"inputs": {"name": "x"}}, key=key)
    assert status == 404 and error["code"] == "workflow_not_found"
    status, error = http("POST", url, {"inputs": {"name": "x"}})
    assert status == 401
    cli_cases = [
        (["test", workflow_id, "--input={bad"], "not valid JSON"),
        (["test", workflow_id, "--input={}"], "inputs.name"),
        (["test", workflow_id, '--input={"name": 5}'], "inputs.name"),
        (["test", "no-such-flow", '--input={"name": "x"}'], "does not exist"),
    ]
    for args, message in cli_cases:
        result = nexus.cli(*args)
        assert result.returncode != 0 and message in result.stderr and result.stdout == "", (args, result)
    assert nexus.cli_json("history")["count"] == 2


def test_runs_that_do_not_wait_go_through_a_celery_worker(nexus):
    key = nexus.credentials["api_key"]
    nexus.cli_json("create", "workflow", "async-hello", "--template=basic")
    nexus.cli_json("deploy", "async-hello")
    status, body = http(
        "POST", f"{nexus.base_url}/api/v1/workflows/async-hello/execute/", {"inputs": {"name": "Later"}, "wait": False}, key=key
    )
    assert status == 202 and body["status"] == "queued"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status, run = http("GET", f"{nexus.base_url}/api/v1/executions/{body['execution_id']}/", key=key)
        if run["status"] == "completed":
            break
        time.sleep(0.1)
    assert run["status"] == "completed" and run["inline"] is False and run["attempt"] == 1
    assert run["outputs"] == {"message": "Hello, Later!"}


def test_a_workflow_with_io_runs_on_a_worker_and_the_caller_waits(nexus, tmp_path):
    definition = {
        "inputs": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "nodes": [
            {"id": "pause", "type": "delay", "config": {"seconds": 0.2}},
            {"id": "greet", "type": "template", "config": {"template": "Hello again, {{ inputs.name }}!"}},
        ],
        "edges": [{"from": "pause", "to": "greet"}],
        "outputs": {"message": "nodes.greet"},
    }
    path = tmp_path / "slow.json"
    path.write_text(json.dumps(definition))
    nexus.cli_json("workflow", "create", "slow-hello", f"--file={path}")
    nexus.cli_json("deploy", "slow-hello")
    status, body = http(
        "POST",
        f"{nexus.base_url}/api/v1/workflows/slow-hello/execute/",
        {"inputs": {"name": "Bo"}},
        key=nexus.credentials["api_key"],
    )
    assert status == 200 and body["status"] == "completed", body
    assert body["result"] == {"message": "Hello again, Bo!"} and body["duration_ms"] >= 200
    run = nexus.cli_json("execution", "show", body["execution_id"])
    assert run["inline"] is False and [s["node"] for s in run["steps"]] == ["pause", "greet"]


def test_startup_is_fast_and_a_second_up_is_safe(nexus):
    # Measured on the first start of a fresh database (migrations included): a figure, asserted loosely.
    assert nexus.startup_s < 60
    result = nexus.cli("health", "--json")
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "healthy"
