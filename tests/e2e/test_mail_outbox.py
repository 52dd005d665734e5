"""A fresh installation with no mail server configured (`nexus up` with zero configuration) runs the
customer-report template to the end: its mail is captured in the tenant's outbox, the run says so, and the
message is found with `nexus mail list|show` and GET /api/v1/mail/."""

import json
import os

import pytest

from tests.e2e.conftest import Installation, http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CUSTOMERS = "name,region,revenue\nAcme,eu,1200\nGlobex,us,800\nInitech,us,450\nUmbrella,eu,1550\n"
MAIL_VARIABLES = [name for name in os.environ if name.startswith(("NEXUS_SMTP", "NEXUS_EMAIL_", "NEXUS_MAIL_"))]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    installation = Installation(tmp_path_factory.mktemp("mail-outbox"), redis_db=9)
    for name in MAIL_VARIABLES:  # zero configuration: nothing says where mail goes
        installation.env.pop(name, None)
    try:
        installation.start()
        yield installation
    finally:
        installation.stop()
        installation.drop()


def test_the_customer_report_template_completes_and_its_mail_is_in_the_outbox(fresh, tmp_path):
    key = fresh.credentials["api_key"]
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text(CUSTOMERS)
    assert fresh.cli_json("dataset", "upload", "customers", f"--file={csv_path}")["row_count"] == 4
    fresh.cli_json("create", "workflow", "customer-report", "--template=customer-report")
    fresh.cli_json("deploy", "customer-report")

    # when the report runs with no mail server anywhere
    status, body = http(
        "POST",
        f"{fresh.base_url}/api/v1/workflows/customer-report/execute/",
        {"inputs": {"recipient": "boss@example.test"}},
        key=key,
    )

    # then it completes, and says its mail went to the local outbox
    assert status == 200, body
    assert body["status"] == "completed", body
    result = body["result"]
    assert (result["customers"], result["revenue"], result["delivered_to"]) == (4, 4000, "local outbox")
    run_id, mail_id = body["execution_id"], result["mail_id"]

    # and `nexus mail list` finds it, naming the run, the workflow and the attached chart
    listed = fresh.cli_json("mail", "list")
    assert listed["count"] == 1
    [entry] = listed["mail"]
    assert (entry["id"], entry["execution_id"], entry["workflow"]) == (mail_id, run_id, "customer-report")
    assert (entry["to"], entry["status"], entry["delivered_to"]) == (["boss@example.test"], "captured", "local outbox")
    assert entry["subject"] == "Customer report: 4 customers"
    assert entry["message_id"] == result["email"]
    assert [(a["name"], a["content_type"], a["artifact_id"]) for a in entry["attachments"]] == [
        ("revenue.png", "image/png", result["chart"])
    ]
    person = fresh.cli("mail", "list", env={"COLUMNS": "200"})
    assert person.returncode == 0 and mail_id in person.stdout and "local outbox" in person.stdout
    shown = fresh.cli_json("mail", "show", mail_id)
    assert shown["body"] == "Customers: 4\nTotal revenue: 4000\nLargest: 1550"

    # and the API lists and shows it for the run
    status, page = http("GET", f"{fresh.base_url}/api/v1/mail/?execution={run_id}", key=key)
    assert status == 200 and [m["id"] for m in page["results"]] == [mail_id], page
    status, message = http("GET", f"{fresh.base_url}/api/v1/mail/{mail_id}/", key=key)
    assert status == 200 and message["body"] == shown["body"] and message["from"] == "nexus@localhost"
    assert json.dumps(message).count("boss@example.test") == 1
