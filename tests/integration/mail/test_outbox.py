"""The tenant's outbox (apps/mail): without a mail server every message is captured there and the run completes
with `delivered_to: local outbox`; with one it is sent and kept there too (or kept as `failed`). The allow-list and
the daily quota hold the same on both transports; the outbox is capped; it is read through GET /api/v1/mail/ and
`nexus mail list|show` by operators and above of its own tenant only."""

import json

import pytest
from django.core import mail as django_mail
from django.db import connection

from apps.audit.models import AuditEvent
from apps.mail.models import MailMessage
from apps.mail.services import mail_send_for_run
from apps.ops.redis_client import redis_client
from apps.runs.models import Execution
from apps.runs.services import run_execute, run_start
from apps.workflows.services import workflow_create, workflow_deploy

from .test_mail import CHART_MAILER, MAILER, _report

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings, smtp_server):
    """No mail server configured: the platform's own default. The SMTP server stays up, to show nothing reaches it."""
    settings.NEXUS_MAIL_TRANSPORT = "outbox"
    smtp_server.messages.clear()
    return smtp_server


@pytest.fixture(params=["outbox", "smtp"])
def transport(request, settings, smtp_server):
    """Each transport in turn: the outbox alone, or the SMTP server."""
    settings.NEXUS_MAIL_TRANSPORT = request.param
    settings.EMAIL_BACKEND = "apps.mail.backends.SmtpBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    smtp_server.messages.clear()
    return request.param


@pytest.fixture
def mailer(owner, acme):
    workflow_create(principal=owner, tenant_id=acme.pk, slug="mailer", definition=MAILER)
    return workflow_deploy(principal=owner, tenant_id=acme.pk, ref="mailer")


def _run(owner, acme, slug: str = "mailer", **inputs) -> Execution:
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref=slug, inputs=inputs, channel="api", wait=False)
    run_execute(run_id=queued.id)
    return Execution.objects.get(id=queued.id)


def _outbox(acme) -> list[MailMessage]:
    connection.set_tenant(acme)
    return list(MailMessage.objects.order_by("id"))


def test_without_a_mail_server_a_runs_mail_is_captured_and_the_run_completes(owner, acme, mailer, outbox, fresh_quota):
    # when a run's email node sends with no mail server configured
    execution = _run(owner, acme, to="ada@example.test")
    # then the run completes and says where the mail went
    assert execution.status == "completed", execution.error
    sent = execution.outputs["sent"]
    assert sent["delivered_to"] == "local outbox" and sent["accepted"] == ["ada@example.test"]
    # and the message is in the tenant's outbox, whole, naming the run and its workflow
    [stored] = _outbox(acme)
    assert stored.id == sent["mail_id"] and stored.id.startswith("msg_") and len(stored.id) == 30
    assert (stored.message_id, stored.to, stored.cc, stored.subject, stored.body, stored.html) == (
        sent["message_id"],
        ["ada@example.test"],
        [],
        "Report for ada@example.test",
        "42",
        None,
    )
    assert (stored.execution_id, stored.workflow_id, stored.workflow_slug) == (execution.id, execution.workflow_id, "mailer")
    assert (stored.actor, stored.source, stored.transport, stored.status, stored.error) == (
        "apikey:test-owner",
        "email_node",
        "local outbox",
        "captured",
        "",
    )
    # and nothing left the machine, while the quota and the audit row count it as sent
    assert outbox.messages == [] and django_mail.outbox == []
    assert redis_client().get(fresh_quota) == b"1"
    [row] = AuditEvent.objects.filter(action="mail.sent", target=sent["message_id"])
    assert (row.details["delivered_to"], row.details["mail_id"]) == ("local outbox", stored.id)


def test_an_mcp_report_is_captured_with_its_attachments_and_no_run(owner, acme, outbox, fresh_quota):
    workflow_create(principal=owner, tenant_id=acme.pk, slug="chart-mailer", definition=CHART_MAILER)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="chart-mailer")
    execution = _run(owner, acme, "chart-mailer", to="ada@example.test", rows=[{"name": "a", "revenue": 1}])
    assert execution.status == "completed", execution.error
    # when an agent sends a report attaching the chart the run made
    artifact_id = _outbox(acme)[0].attachments[0]["artifact_id"]
    report = _report(acme, "bob@example.test", artifact_ids=[artifact_id])
    # then it is captured too, with no run, as the agent's, its attachment described (the bytes stay in the artifact)
    assert not report.is_error, report.text
    assert report.structured["delivered_to"] == "local outbox"
    node_mail, tool_mail = _outbox(acme)
    assert tool_mail.id == report.structured["mail_id"]
    assert (tool_mail.execution_id, tool_mail.workflow_id, tool_mail.actor, tool_mail.source) == (
        None,
        None,
        "apikey:test-mcp",
        "send_email_report",
    )
    assert tool_mail.attachments == node_mail.attachments
    [attachment] = tool_mail.attachments
    assert (attachment["name"], attachment["content_type"], attachment["artifact_id"]) == (
        "chart.svg",
        "image/svg+xml",
        artifact_id,
    )
    assert attachment["size"] > 0
    assert outbox.messages == []


def test_each_transport_keeps_the_message_saying_where_it_went(owner, acme, mailer, transport, fresh_quota, smtp_server):
    execution = _run(owner, acme, to="ada@example.test")
    assert execution.status == "completed", execution.error
    [stored] = _outbox(acme)
    where, status, received = {
        "smtp": (f"smtp://127.0.0.1:{smtp_server.port}", "sent", [["ada@example.test"]]),
        "outbox": ("local outbox", "captured", []),
    }[transport]
    assert (stored.status, stored.transport, execution.outputs["sent"]["delivered_to"]) == (status, where, where)
    assert [m["to"] for m in smtp_server.messages] == received


def test_a_server_that_cannot_be_reached_fails_the_node_keeps_the_message_as_failed_and_gives_back_the_quota(
    owner, acme, mailer, smtp, fresh_quota, settings
):
    settings.EMAIL_PORT = _closed_port()
    # when the run sends with the server down
    execution = _run(owner, acme, to="ada@example.test")
    # then the node fails with the reason, the quota is given back and no audit row says it was sent
    assert execution.status == "failed" and execution.error["code"] == "email_failed"
    assert "Connection refused" in execution.error["message"]
    assert redis_client().get(fresh_quota) == b"0"
    # and the outbox keeps it as failed, with why, so an operator can see what did not go out
    [stored] = _outbox(acme)
    assert (stored.status, stored.execution_id, stored.transport) == (
        "failed",
        execution.id,
        f"smtp://127.0.0.1:{settings.EMAIL_PORT}",
    )
    assert "Connection refused" in stored.error
    assert not AuditEvent.objects.filter(action="mail.sent", target=stored.message_id).exists()


def test_the_allow_list_refuses_on_both_transports_and_keeps_nothing(
    owner, acme, mailer, transport, fresh_quota, settings, smtp_server
):
    settings.NEXUS_MAIL_ALLOWED_RECIPIENTS = ("@example.test",)
    execution = _run(owner, acme, to="mallory@evil.test")
    report = _report(acme, "eve@evil.test")
    assert execution.status == "failed" and execution.error["code"] == "recipient_not_allowed"
    assert report.is_error and report.error_code == "recipient_not_allowed"
    assert _outbox(acme) == [] and smtp_server.messages == []
    assert redis_client().get(fresh_quota) == b"0"


def test_the_daily_quota_refuses_on_both_transports(owner, acme, mailer, transport, fresh_quota, settings, smtp_server):
    settings.NEXUS_MAIL_PER_TENANT_PER_DAY = 1
    assert _run(owner, acme, to="one@example.test").status == "completed"
    execution = _run(owner, acme, to="two@example.test")
    report = _report(acme, "three@example.test")
    assert execution.status == "failed" and execution.error["code"] == "quota_exceeded"
    assert report.is_error and report.error_code == "quota_exceeded"
    assert [m.to for m in _outbox(acme)] == [["one@example.test"]]
    assert len(smtp_server.messages) == (1 if transport == "smtp" else 0)


def test_the_outbox_keeps_the_newest_messages_up_to_its_cap(acme, outbox, fresh_quota, settings):
    settings.NEXUS_MAIL_OUTBOX_MAX = 3
    sent = [
        mail_send_for_run(
            run_id=None, actor="user:alice", tenant_id=acme.pk, to=[f"n{i}@example.test"], subject=f"#{i}", body="b"
        )
        for i in range(5)
    ]
    assert [m.subject for m in _outbox(acme)] == ["#2", "#3", "#4"]
    assert [m.id for m in _outbox(acme)] == [s["mail_id"] for s in sent[2:]]
    assert redis_client().get(fresh_quota) == b"5"  # the cap drops old entries, it gives no quota back


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# ---------------------------------------------------------------------------------------------- reading it


@pytest.fixture
def sent_mail(owner, acme, mailer, outbox, fresh_quota):
    """Three messages in acme's outbox: two from runs of `mailer`, one from an agent; and one in globex's."""
    first = _run(owner, acme, to="ada@example.test")
    second = _run(owner, acme, to="bob@example.test")
    report = _report(acme, "cyd@example.test")
    from apps.tenants.models import Tenant

    connection.set_schema_to_public()
    globex = Tenant.objects.get(slug="globex")
    connection.set_tenant(globex)
    other = mail_send_for_run(run_id=None, actor="user:gil", tenant_id=globex.pk, to=["gil@example.test"], subject="g", body="b")
    connection.set_schema_to_public()
    return {
        "runs": [first, second],
        "ids": [first.outputs["sent"]["mail_id"], second.outputs["sent"]["mail_id"], report.structured["mail_id"]],
        "globex": other["mail_id"],
    }


def test_the_api_lists_the_outbox_newest_first_without_bodies(api, sent_mail, django_assert_num_queries):
    client = api(role="operator")
    response = client.get("/api/v1/mail/")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["count"] == 3
    assert [m["id"] for m in body["results"]] == list(reversed(sent_mail["ids"]))
    newest_run_mail = body["results"][1]
    assert newest_run_mail == {
        "id": sent_mail["ids"][1],
        "message_id": newest_run_mail["message_id"],
        "from": "nexus@localhost",
        "to": ["bob@example.test"],
        "cc": [],
        "subject": "Report for bob@example.test",
        "attachments": [],
        "execution_id": sent_mail["runs"][1].id,
        "workflow_id": sent_mail["runs"][1].workflow_id,
        "workflow": "mailer",
        "actor": "apikey:test-owner",
        "source": "email_node",
        "delivered_to": "local outbox",
        "status": "captured",
        "error": None,
        "created_at": newest_run_mail["created_at"],
    }
    # filters and pages
    run_id = sent_mail["runs"][0].id
    assert [m["id"] for m in client.get("/api/v1/mail/", execution=run_id).json()["results"]] == [sent_mail["ids"][0]]
    by_slug = client.get("/api/v1/mail/", workflow="mailer").json()
    by_id = client.get("/api/v1/mail/", workflow=sent_mail["runs"][0].workflow_id).json()
    assert by_slug == by_id and by_slug["count"] == 2
    assert client.get("/api/v1/mail/", status="failed").json() == {"count": 0, "results": []}
    page = client.get("/api/v1/mail/", limit=1, offset=1).json()
    assert (page["count"], [m["id"] for m in page["results"]]) == (3, [sent_mail["ids"][1]])
    # one query for the count, one for the page, whatever the page's size (plus the credential's and tenant's)
    client.get("/api/v1/mail/", limit=1)
    with django_assert_num_queries(2, exact=False) as one:
        client.get("/api/v1/mail/", limit=1)
    with django_assert_num_queries(len(one.captured_queries)):
        client.get("/api/v1/mail/", limit=3)


def test_the_api_shows_one_message_with_its_bodies(api, sent_mail):
    response = api(role="operator").get(f"/api/v1/mail/{sent_mail['ids'][0]}/")
    assert response.status_code == 200, response.content
    shown = response.json()
    assert (shown["body"], shown["html"], shown["to"], shown["status"]) == ("42", None, ["ada@example.test"], "captured")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"offset": -1}, "offset"),
        ({"status": "lost"}, "status"),
        ({"execution": ""}, "execution"),
        ({"workflow": ""}, "workflow"),
        ({"workflow": "w" * 81}, "workflow"),
    ],
)
def test_a_bad_list_parameter_is_refused_naming_it(api, sent_mail, params, field):
    response = api(role="operator").get("/api/v1/mail/", **params)
    assert response.status_code == 400
    assert field in response.json()["fields"], response.json()


def test_below_operator_and_in_another_tenant_the_outbox_is_out_of_reach(api, sent_mail):
    mail_id = sent_mail["ids"][0]
    # a viewer may read runs but not the mail they sent
    for path in ("/api/v1/mail/", f"/api/v1/mail/{mail_id}/"):
        refused = api(role="viewer").get(path)
        assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    denial = AuditEvent.objects.filter(action="access.denied", target="mail.read").order_by("-seq").first()
    assert denial is not None and denial.details["permission"] == "mail.read"
    # another tenant's owner finds neither the message nor it in their list; their own is theirs
    globex = api(tenant="globex", role="owner")
    missing = globex.get(f"/api/v1/mail/{mail_id}/")
    assert (missing.status_code, missing.json()["code"]) == (404, "mail_not_found")
    assert [m["id"] for m in globex.get("/api/v1/mail/").json()["results"]] == [sent_mail["globex"]]
    assert api(role="owner").get(f"/api/v1/mail/{sent_mail['globex']}/").status_code == 404
    # and nobody without a credential
    assert api(key=None).get("/api/v1/mail/").status_code == 401


def test_nexus_mail_list_and_show(nexus, sent_mail, make_user, monkeypatch):
    code, out, err = nexus("mail", "list", "--tenant=acme", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["count"] == 3 and [m["id"] for m in listed["mail"]] == list(reversed(sent_mail["ids"]))
    assert "body" not in listed["mail"][0]
    code, out, err = nexus("mail", "list", "--tenant=acme", f"--execution={sent_mail['runs'][0].id}", "--json")
    assert [m["to"] for m in json.loads(out)["mail"]] == [["ada@example.test"]]
    code, out, err = nexus("mail", "show", sent_mail["ids"][0], "--tenant=acme", "--json")
    assert code == 0, err
    assert (json.loads(out)["body"], json.loads(out)["delivered_to"]) == ("42", "local outbox")
    # for a person: a table, and a panel with the headers and the body
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = nexus("mail", "list", "--tenant=acme")
    assert code == 0 and "Report for ada@example.test" in out and "local outbox" in out
    code, out, err = nexus("mail", "show", sent_mail["ids"][0], "--tenant=acme")
    assert code == 0 and "Subject: Report for ada@example.test" in out and "42" in out
    # refusals: unknown id (3), another tenant's (3), a viewer (4), a bad limit (2)
    code, out, err = nexus("mail", "show", "msg_nothing", "--tenant=acme")
    assert (code, out) == (3, "") and "mail 'msg_nothing' does not exist" in err
    code, out, err = nexus("mail", "show", sent_mail["globex"], "--tenant=acme")
    assert code == 3 and out == ""
    make_user("vic", acme="viewer")
    code, out, err = nexus("mail", "list", "--tenant=acme", "--as=vic")
    assert code == 4 and out == "" and "may not mail read" in err
    code, out, err = nexus("mail", "list", "--tenant=acme", "--limit=0")
    assert code == 2 and "limit" in err
