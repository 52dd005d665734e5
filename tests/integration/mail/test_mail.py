"""Outbound mail (apps/mail): the recipient allow-list, the per-tenant daily quota and one `mail.sent` audit row
per message, for both doors that send mail (the `email` node in a run, MCP send_email_report), against a real
SMTP server."""

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.mail.services import mail_send, mail_send_for_run
from apps.mcp_bridge.tools import call_tool
from apps.ops.redis_client import redis_client
from apps.quotas.periods import period_bounds, period_key
from apps.quotas.services import _mails_sent
from apps.runs.models import Execution
from apps.runs.services import run_execute, run_start
from apps.workflows.services import workflow_create, workflow_deploy

pytestmark = pytest.mark.django_db

MAILER = {
    "inputs": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]},
    "nodes": [
        {
            "id": "send",
            "type": "email",
            "config": {"to": ["{{ inputs.to }}"], "subject": "Report for {{ inputs.to }}", "body": "42"},
        }
    ],
    "edges": [],
    "outputs": {"sent": "nodes.send"},
}


@pytest.fixture
def mailer(owner, acme):
    workflow_create(principal=owner, tenant_id=acme.pk, slug="mailer", definition=MAILER)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="mailer")


def _run(owner, acme, to: str) -> Execution:
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="mailer", inputs={"to": to}, channel="api", wait=False)
    run_execute(run_id=queued.id)
    return Execution.objects.get(id=queued.id)


def _report(acme, to, **extra):
    from apps.core.principal import Principal

    operator = Principal(kind="api_key", actor="apikey:test-mcp", tenant_id=acme.pk, tenant_slug="acme", role="operator")
    connection.set_tenant(acme)
    return call_tool(
        principal=operator, tenant=acme, name="send_email_report", arguments={"to": to, "subject": "s", "body": "b", **extra}
    )


def _sent_rows(**filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="mail.sent", **filters).order_by("seq"))


def test_every_message_sent_leaves_one_audit_row_from_either_door(owner, acme, mailer, smtp, fresh_quota, settings):
    settings.NEXUS_MAIL_ALLOWED_RECIPIENTS = ("@example.test", "ceo@partner.test")
    # when a run's email node sends, then an MCP caller sends a report
    execution = _run(owner, acme, "ada@example.test")
    report = _report(acme, ["CEO@partner.test"], cc=["bob@example.test"])
    # then both messages reached the server
    assert execution.status == "completed", execution.error
    assert not report.is_error, report.text
    assert [m["to"] for m in smtp.messages] == [["ada@example.test"], ["CEO@partner.test", "bob@example.test"]]
    # and each left one audit row, naming what was sent, to whom, by whom and for which run
    [node_row] = _sent_rows(target=execution.outputs["sent"]["message_id"])
    assert (node_row.tenant_id, node_row.actor, node_row.outcome) == (acme.pk, "apikey:test-owner", "success")
    assert node_row.details == {
        "recipients": ["ada@example.test"],
        "recipient_count": 1,
        "subject": "Report for ada@example.test",
        "attachments": 0,
        "run_id": execution.id,
        "source": "email_node",
        "delivered_to": f"smtp://127.0.0.1:{smtp.port}",
        "mail_id": execution.outputs["sent"]["mail_id"],
    }
    [tool_row] = _sent_rows(target=report.structured["message_id"])
    assert (tool_row.tenant_id, tool_row.actor) == (acme.pk, "apikey:test-mcp")
    assert tool_row.details == {
        "recipients": ["CEO@partner.test", "bob@example.test"],
        "recipient_count": 2,
        "subject": "s",
        "attachments": 0,
        "run_id": None,
        "source": "send_email_report",
        "delivered_to": f"smtp://127.0.0.1:{smtp.port}",
        "mail_id": report.structured["mail_id"],
    }
    assert redis_client().get(fresh_quota) == b"2"


def test_a_recipient_outside_the_allow_list_is_refused_and_nothing_is_sent(owner, acme, mailer, smtp, fresh_quota, settings):
    settings.NEXUS_MAIL_ALLOWED_RECIPIENTS = ("@example.test", "ceo@partner.test")
    # when a run mails outside the list, and an MCP caller copies someone outside it
    execution = _run(owner, acme, "mallory@evil.test")
    report = _report(acme, "ada@example.test", cc=["eve@partner.test"])
    # then the node fails naming the recipient, the tool call is a tool error naming it
    assert execution.status == "failed"
    assert execution.error["code"] == "recipient_not_allowed" and execution.error["node"] == "send"
    assert "mallory@evil.test" in execution.error["message"]
    assert report.is_error and report.error_code == "recipient_not_allowed"
    assert report.text.splitlines()[0] == (
        "recipient not allowed by NEXUS_MAIL_ALLOWED_RECIPIENTS: eve@partner.test (recipient_not_allowed)"
    )
    # and nothing was sent, recorded as sent or taken from the quota
    assert smtp.messages == []
    assert _sent_rows(details__run_id=execution.id) == []
    assert redis_client().get(fresh_quota) == b"0"


def test_past_the_daily_quota_mail_is_refused_and_nothing_is_sent(owner, acme, mailer, smtp, fresh_quota, settings):
    settings.NEXUS_MAIL_PER_TENANT_PER_DAY = 2
    # given the day's two messages sent
    assert _run(owner, acme, "one@example.test").status == "completed"
    assert not _report(acme, "two@example.test").is_error
    # when a third is asked for through either door
    execution = _run(owner, acme, "three@example.test")
    report = _report(acme, "four@example.test")
    # then both are refused with the quota's reason
    assert execution.status == "failed" and execution.error["code"] == "quota_exceeded"
    assert execution.error["message"] == f"tenant 'acme' has sent its 2 email messages for {period_key(timezone.now(), 'day')}"
    assert report.is_error and report.error_code == "quota_exceeded"
    # and only the first two were sent and recorded
    assert [m["to"] for m in smtp.messages] == [["one@example.test"], ["two@example.test"]]
    assert _sent_rows(details__run_id=execution.id) == []
    assert redis_client().get(fresh_quota) == b"2"


def test_the_quota_counter_is_seeded_from_the_days_audit_rows(owner, acme, mailer, smtp, fresh_quota, settings):
    # given one message sent today, then Redis losing the counter
    assert _run(owner, acme, "one@example.test").status == "completed"
    start, end = period_bounds(timezone.now(), "day")
    sent_today = _mails_sent(acme.pk, start, end)
    assert sent_today >= 1
    redis_client().delete(fresh_quota)
    settings.NEXUS_MAIL_PER_TENANT_PER_DAY = sent_today
    # when another message is asked for
    execution = _run(owner, acme, "two@example.test")
    # then the rows already sent count: it is refused
    assert execution.status == "failed" and execution.error["code"] == "quota_exceeded"
    assert [m["to"] for m in smtp.messages] == [["one@example.test"]]
    assert redis_client().get(fresh_quota) == str(sent_today).encode()


def test_a_zero_quota_turns_mail_off(acme, smtp, settings):
    settings.NEXUS_MAIL_PER_TENANT_PER_DAY = 0
    report = _report(acme, "ada@example.test")
    assert report.is_error and report.error_code == "quota_exceeded"
    assert smtp.messages == []


def test_a_tenants_own_mail_quota_overrides_the_platforms(owner, acme, mailer, smtp, fresh_quota, settings):
    from apps.core.principal import Principal
    from apps.tenants.services import tenant_update

    settings.NEXUS_MAIL_PER_TENANT_PER_DAY = 100
    admin = Principal(
        kind="system", actor="system:test", tenant_id=acme.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )
    # given a platform admin giving acme one message a day
    tenant = tenant_update(principal=admin, slug="acme", quota_mail_per_day=1)
    assert tenant.quota_mail_per_day == 1
    try:
        connection.set_tenant(acme)
        # when two messages are asked for
        first, second = _run(owner, acme, "one@example.test"), _run(owner, acme, "two@example.test")
        # then the tenant's own limit applied
        assert first.status == "completed" and second.status == "failed"
        assert second.error["message"].startswith("tenant 'acme' has sent its 1 email messages for ")
        assert [m["to"] for m in smtp.messages] == [["one@example.test"]]
    finally:
        tenant_update(principal=admin, slug="acme", quota_mail_per_day=None)


def test_a_tenants_mail_quota_is_validated_and_shown(nexus, nexus_world):
    # a platform admin's CLI (no --as: the operator) sets and shows it; a bad value names the field
    code, out, err = nexus("tenant", "update", "globex", "--quota-mail-per-day", "-1", "--json")
    assert code != 0 and "quota_mail_per_day" in err
    code, out, err = nexus("tenant", "update", "globex", "--quota-mail-per-day", "25", "--json")
    assert code == 0, err
    assert '"mail_per_day": 25' in out
    code, out, err = nexus("tenant", "update", "globex", "--quota-mail-per-day", "default", "--json")
    assert code == 0 and '"mail_per_day": null' in out


CHART_MAILER = {
    "inputs": {"type": "object", "properties": {"to": {"type": "string"}, "rows": {"type": "array"}}, "required": ["to"]},
    "nodes": [
        {"id": "chart", "type": "chart", "config": {"rows": "inputs.rows", "kind": "bar", "x": "name", "y": "revenue"}},
        {
            "id": "send",
            "type": "email",
            "config": {"to": ["{{ inputs.to }}"], "subject": "s", "body": "b", "attachments": ["nodes.chart"]},
        },
    ],
    "edges": [{"from": "chart", "to": "send"}],
    "outputs": {"sent": "nodes.send"},
}


def test_a_refused_rest_execute_of_a_chart_and_mail_workflow_stores_and_sends_nothing(api, owner, acme, smtp, fresh_quota):
    from apps.artifacts.models import Artifact

    workflow_create(principal=owner, tenant_id=acme.pk, slug="chart-mailer", definition=CHART_MAILER)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="chart-mailer")
    connection.set_schema_to_public()
    sent_before = AuditEvent.objects.filter(action="mail.sent").count()
    inputs = {"to": "ada@example.test", "rows": [{"name": "a", "revenue": 1}]}

    response = api(role="viewer").post("/api/v1/workflows/chart-mailer/execute/", {"inputs": inputs})

    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    connection.set_tenant(acme)
    assert (Execution.objects.count(), Artifact.objects.count()) == (0, 0)
    assert smtp.messages == []
    connection.set_schema_to_public()
    assert AuditEvent.objects.filter(action="mail.sent").count() == sent_before
    assert redis_client().get(fresh_quota) == b"0"

    # while an operator's same call charts and mails: the refusal, not the workflow, is why nothing happened
    # (not waiting: no Celery worker runs here, so a waiting call would answer 202 only after the wait's 30 s)
    allowed = api(role="operator").post("/api/v1/workflows/chart-mailer/execute/", {"inputs": inputs, "wait": False})
    assert allowed.status_code == 202, allowed.json()  # queued for a worker (it does I/O): this test is the worker
    connection.set_tenant(acme)
    run_execute(run_id=allowed.json()["execution_id"])
    assert Execution.objects.get(id=allowed.json()["execution_id"]).status == "completed"
    assert Artifact.objects.count() == 1
    assert [m["to"] for m in smtp.messages] == [["ada@example.test"]]


def test_only_a_run_sends_mail_without_a_principal(acme, smtp, fresh_quota):
    # when mail is asked for with no principal outside a run
    with pytest.raises(PermissionDenied):
        mail_send(principal=None, tenant_id=acme.pk, to=["ada@example.test"], subject="s", body="b", source="test")
    # then nothing is sent or counted; a run's send names the run instead
    assert smtp.messages == [] and redis_client().get(fresh_quota) in (None, b"0")
    sent = mail_send_for_run(
        run_id="run_x", actor="user:alice", tenant_id=acme.pk, to=["ada@example.test"], subject="s", body="b"
    )
    assert sent["accepted"] == ["ada@example.test"] and len(smtp.messages) == 1
    row = _sent_rows(target=sent["message_id"])[0]
    assert (row.actor, row.details["run_id"], row.details["source"]) == ("user:alice", "run_x", "email_node")
