"""Real multi-step workflows through real processes: datasets, metrics, charts, email, HTTP, recovery."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMERS = "name,region,revenue\nAcme,eu,1200\nGlobex,us,800\nInitech,us,450\nUmbrella,eu,1550\n"


def _wait_for_mail(mailbox, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(mailbox.messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(mailbox.messages) >= count, f"{len(mailbox.messages)} messages received"


def test_customer_report_queries_charts_and_emails(nexus, mailbox, tmp_path):
    key = nexus.credentials["api_key"]
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(CUSTOMERS)
    uploaded = nexus.cli_json("dataset", "upload", "customers", f"--file={csv_path}")
    assert uploaded["row_count"] == 4
    nexus.cli_json("create", "workflow", "customer-report", "--template=customer-report")
    nexus.cli_json("deploy", "customer-report")
    before = len(mailbox.messages)

    status, body = http(
        "POST",
        f"{nexus.base_url}/api/v1/workflows/customer-report/execute/",
        {"inputs": {"recipient": "boss@example.test"}},
        key=key,
    )
    assert status == 200, body
    assert body["status"] == "completed", body
    result = body["result"]
    assert result["customers"] == 4 and result["revenue"] == 4000
    chart_id = result["chart"]
    assert chart_id.startswith("art_")

    _wait_for_mail(mailbox, before + 1)
    received = mailbox.messages[before]
    assert received["to"] == ["boss@example.test"]
    message = received["message"]
    assert "4 customers" in message["Subject"]
    attachments = [part for part in message.walk() if part.get_content_disposition() == "attachment"]
    assert len(attachments) == 1 and attachments[0].get_content_type() == "image/png"
    assert attachments[0].get_payload(decode=True).startswith(b"\x89PNG")

    status, artifact = http("GET", f"{nexus.base_url}/api/v1/artifacts/{chart_id}/", key=key)
    assert status == 200 and artifact["content_type"] == "image/png"


def test_a_missing_dataset_falls_back_and_the_run_says_so(nexus, mailbox):
    key = nexus.credentials["api_key"]
    nexus.cli_json("create", "workflow", "report-nodata", "--template=customer-report")
    nexus.cli_json("deploy", "report-nodata")
    status, body = http(
        "POST",
        f"{nexus.base_url}/api/v1/workflows/report-nodata/execute/",
        {"inputs": {"recipient": "boss@example.test", "dataset": "no-such-dataset"}},
        key=key,
    )
    assert status == 200, body
    assert body["status"] == "completed_with_recovery", body
    assert body["result"]["customers"] == 0
    run = nexus.cli_json("execution", "show", body["execution_id"])
    assert run["recovery"][0]["node"] == "fetch" and run["recovery"][0]["action"] == "fallback"
    assert run["recovery"][0]["error"]["code"] == "dataset_not_found"


def test_data_processor_and_its_integration_suite(nexus):
    nexus.cli_json("create", "workflow", "data-processor", "--template=data-processor")
    report = nexus.cli("test", "data-processor", "--suite", "integration", "--json")
    assert report.returncode == 0, report.stderr
    suite = json.loads(report.stdout)
    assert suite["total"] >= 1 and suite["failed"] == 0 and suite["passed"] == suite["total"]


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's hook name)
        length = int(self.headers.get("Content-Length", 0))
        payload = json.loads(self.rfile.read(length) or b"{}")
        body = json.dumps({"echo": payload, "path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_request_node_calls_a_real_server(nexus, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        definition = {
            "inputs": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "nodes": [
                {
                    "id": "call",
                    "type": "http_request",
                    "config": {
                        "method": "POST",
                        "url": f"http://127.0.0.1:{server.server_port}/weather",
                        "json": {"city": "{{ inputs.city }}"},
                    },
                    "retry": {"attempts": 2},
                }
            ],
            "outputs": {"status": "nodes.call.status", "echo": "nodes.call.json.echo"},
        }
        path = tmp_path / "call.json"
        path.write_text(json.dumps(definition))
        nexus.cli_json("workflow", "create", "caller", f"--file={path}")
        outputs = nexus.cli_json("test", "caller", '--input={"city": "Oslo"}')
        assert outputs == {"status": 200, "echo": {"city": "Oslo"}}
    finally:
        server.shutdown()


def test_cancelling_a_running_run_over_the_api(nexus, tmp_path):
    key = nexus.credentials["api_key"]
    definition = {
        "nodes": [
            {"id": "long", "type": "delay", "config": {"seconds": 20}},
            {"id": "after", "type": "template", "config": {"template": "too late"}},
        ],
        "edges": [{"from": "long", "to": "after"}],
        "outputs": {"r": "nodes.after"},
    }
    path = tmp_path / "long.json"
    path.write_text(json.dumps(definition))
    nexus.cli_json("workflow", "create", "long-wait", f"--file={path}")
    nexus.cli_json("deploy", "long-wait")
    status, body = http("POST", f"{nexus.base_url}/api/v1/workflows/long-wait/execute/", {"wait": False}, key=key)
    assert status == 202
    run_url = f"{nexus.base_url}/api/v1/executions/{body['execution_id']}/"
    deadline = time.monotonic() + 15
    while http("GET", run_url, key=key)[1]["status"] != "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    started = time.monotonic()
    status, cancelled = http("POST", f"{run_url}cancel/", {}, key=key)
    assert status == 200 and cancelled["status"] == "running"
    while http("GET", run_url, key=key)[1]["status"] == "running" and time.monotonic() < started + 10:
        time.sleep(0.1)
    run = http("GET", run_url, key=key)[1]
    assert run["status"] == "cancelled" and time.monotonic() - started < 5
    assert [s["node"] for s in run["steps"] if s["status"] == "completed"] == []
    status, again = http("POST", f"{run_url}cancel/", {}, key=key)
    assert status == 409 and again["code"] == "execution_finished"
