"""The MCP tool catalogue (apps/catalogue) and tool calls (apps/mcp_bridge/tools.py) against the real database: roles, tenants,
argument errors, runs recorded with channel mcp, the one-node engine tools."""

import json

import pytest
from django.db import connection

from apps.artifacts.models import Artifact
from apps.mcp_bridge.results import PendingRun, UnknownTool
from apps.mcp_bridge.tools import PLATFORM_TOOLS, call_tool, tool_list
from apps.runs.models import Execution

pytestmark = pytest.mark.django_db

PLATFORM = {
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


def _call(principal, tenant, name, arguments=None, session_id=None):
    connection.set_tenant(tenant)
    return call_tool(principal=principal, tenant=tenant, name=name, arguments=arguments, session_id=session_id)


def test_the_catalogue_has_the_platform_tools_and_one_tool_per_deployed_workflow(acme, principal, hello):
    # given hello-world deployed and data-processor created but not deployed
    from apps.workflows.services import workflow_create

    workflow_create(principal=principal(), tenant_id=acme.pk, slug="data-processor", template="data-processor")
    # when
    tools = {tool.name: tool for tool in tool_list(principal=principal(role="viewer"), tenant=acme)}
    # then
    assert set(tools) == PLATFORM | {"workflow_hello-world"}
    hello_tool = tools["workflow_hello-world"]
    assert hello_tool.input_schema == {
        "type": "object",
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Who to greet"}},
        "required": ["name"],
        "additionalProperties": False,
    }
    assert hello_tool.output_schema == {"type": "object", "properties": {"message": {}}}
    assert hello_tool.description.startswith("Greets someone by name")
    assert hello_tool.annotations.read_only_hint is False and hello_tool.annotations.destructive_hint is False
    assert tools["list_workflows"].annotations.read_only_hint is True
    assert tools["cancel_execution"].annotations.destructive_hint is True
    assert tools["run_workflow"].annotations.open_world_hint is True
    assert all(tool.output_schema and tool.output_schema["type"] == "object" for tool in tools.values())


def test_another_tenants_workflow_never_appears_and_cannot_be_called(acme, principal, hello, nexus_world):
    globex = nexus_world["tenants"]["globex"]
    connection.set_tenant(globex)
    names = {tool.name for tool in tool_list(principal=principal("globex"), tenant=globex)}
    assert names == PLATFORM
    with pytest.raises(UnknownTool):
        _call(principal("globex"), globex, "workflow_hello-world", {"name": "Mallory"})
    refused = _call(principal("globex"), globex, "run_workflow", {"workflow": "hello-world", "inputs": {"name": "M"}})
    assert refused.is_error and refused.error_code == "workflow_not_found"
    refused = _call(principal("globex"), globex, "describe_workflow", {"workflow": hello.id})
    assert refused.is_error and refused.error_code == "workflow_not_found"
    connection.set_tenant(globex)
    assert Execution.objects.count() == 0
    connection.set_tenant(acme)
    assert Execution.objects.count() == 0


@pytest.mark.parametrize(
    "name", ["workflow_", "workflow_Hello", "workflow_wf_x", "workflow_../x", "nope", "workflow_data-processor"]
)
def test_names_that_are_no_tool_are_unknown(acme, principal, hello, name):
    with pytest.raises(UnknownTool):
        _call(principal(), acme, name, {})


def test_a_workflow_tool_runs_the_deployed_version_with_channel_mcp(acme, principal, hello):
    result = _call(principal(role="operator"), acme, "workflow_hello-world", {"name": "Ada"})
    assert not result.is_error
    assert result.structured == {"message": "Hello, Ada!"}
    assert result.text.startswith('{"message": "Hello, Ada!"}')
    [run] = Execution.objects.all()
    assert result.run_id == run.id and result.meta["nexus/execution"]["id"] == run.id
    assert (run.channel, run.status, run.actor, run.environment) == (
        "mcp",
        "completed",
        "apikey:test-acme-operator",
        "production",
    )
    assert run.session_id is None


@pytest.mark.parametrize(
    ("arguments", "field", "message"),
    [
        ({}, "inputs.name", "'name' is a required property"),
        ({"name": 3}, "inputs.name", "3 is not of type 'string'"),
        ({"name": "x", "extra": 1}, "inputs", "Additional properties are not allowed"),
    ],
)
def test_workflow_tool_arguments_are_checked_against_the_input_schema(acme, principal, hello, arguments, field, message):
    result = _call(principal(), acme, "workflow_hello-world", arguments)
    assert result.is_error and result.error_code == "invalid_inputs"
    assert f"{field}: {message}" in result.text
    assert Execution.objects.count() == 0


def test_a_viewer_can_list_and_describe_but_not_run(acme, principal, hello, mailoutbox, settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"  # Django's backend: pytest-django's in-memory mailbox
    viewer = principal(role="viewer")
    listed = _call(viewer, acme, "list_workflows", {})
    assert not listed.is_error and [w["tool"] for w in listed.structured["workflows"]] == ["workflow_hello-world"]
    described = _call(viewer, acme, "describe_workflow", {"workflow": "hello-world"})
    assert described.structured["slug"] == "hello-world" and described.structured["tool_output_schema"]["properties"] == {
        "message": {}
    }
    for name, arguments, action in [
        ("workflow_hello-world", {"name": "V"}, "workflow.execute"),
        ("run_workflow", {"workflow": "hello-world", "inputs": {"name": "V"}}, "workflow.execute"),
        ("render_chart", {"rows": [{"a": "x", "b": 1}], "kind": "bar", "x": "a", "y": "b"}, "artifact.create"),
        ("send_email_report", {"to": "a@example.test", "subject": "s", "body": "b"}, "mail.send"),
    ]:
        refused = _call(viewer, acme, name, arguments)
        assert refused.is_error and refused.error_code == "permission_denied", name
        assert f"role 'viewer' may not {action.replace('.', ' ')}" in refused.text
    # Refused means nothing ran, nothing was stored and nothing was sent.
    assert Execution.objects.count() == 0
    assert Artifact.objects.count() == 0
    assert mailoutbox == []


def test_platform_tool_arguments_are_validated_naming_the_field(acme, principal, hello):
    missing = _call(principal(), acme, "run_workflow", {"inputs": {}})
    assert missing.is_error and missing.error_code == "invalid_arguments"
    assert "workflow: 'workflow' is a required property" in missing.text
    wrong = _call(principal(), acme, "list_executions", {"limit": "ten"})
    assert "limit: 'ten' is not of type 'integer'" in wrong.text
    extra = _call(principal(), acme, "get_execution", {"execution_id": "run_x", "verbose": True})
    assert extra.is_error and "arguments: Additional properties are not allowed" in extra.text


def test_run_workflow_without_waiting_returns_the_run_id_at_once(
    acme, principal, hello, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("apps.runs.services._enqueue", lambda run_id, schema, *queue: sent.append((run_id, schema)))
    with django_capture_on_commit_callbacks(execute=True):
        result = _call(principal(), acme, "run_workflow", {"workflow": "hello-world", "inputs": {"name": "Q"}, "wait": False})
    assert not result.is_error and result.structured["status"] == "queued"
    assert sent == [(result.structured["execution_id"], acme.schema_name)]
    fetched = _call(principal(role="viewer"), acme, "get_execution", {"execution_id": result.run_id})
    assert fetched.structured["channel"] == "mcp" and fetched.structured["status"] == "queued"
    cancelled = _call(principal(role="operator"), acme, "cancel_execution", {"execution_id": result.run_id})
    assert cancelled.structured["status"] == "cancelled"
    again = _call(principal(role="operator"), acme, "cancel_execution", {"execution_id": result.run_id})
    assert again.is_error and again.error_code == "execution_finished"
    listed = _call(principal(role="viewer"), acme, "list_executions", {"channel": "mcp"})
    assert listed.structured["count"] == 1 and listed.structured["executions"][0]["id"] == result.run_id


def test_a_waited_run_that_needs_a_worker_is_handed_back_as_pending(acme, principal, monkeypatch):
    from apps.workflows.services import workflow_create, workflow_deploy

    monkeypatch.setattr("apps.runs.services._enqueue", lambda *args: None)
    owner = principal()
    workflow_create(principal=owner, tenant_id=acme.pk, slug="customer-report", template="customer-report")
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="customer-report")
    pending = _call(owner, acme, "workflow_customer-report", {"recipient": "qa@example.test"})
    assert isinstance(pending, PendingRun) and pending.total_nodes == 5
    run = Execution.objects.get(id=pending.run_id)
    assert (run.status, run.channel) == ("queued", "mcp")
    still = pending.finish(run)
    assert still.is_error and still.error_code == "still_running" and run.id in still.text


def test_a_session_header_reaches_run_start_which_knows_no_sessions_yet(acme, principal, hello):
    result = _call(principal(), acme, "workflow_hello-world", {"name": "S"}, session_id="ses_01abc")
    assert result.is_error and result.error_code == "session_not_found"
    assert Execution.objects.count() == 0


def test_session_info_shows_the_bound_session_and_its_runs(acme, principal, hello, nexus_world):
    from apps.nexus_sessions.services import session_create

    session = session_create(principal=principal(), tenant_id=acme.pk, user="agent-user", metadata={"via": "mcp"})
    ran = _call(principal(role="operator"), acme, "workflow_hello-world", {"name": "S"}, session_id=session.id)
    assert not ran.is_error, ran.text
    info = _call(principal(role="viewer"), acme, "session_info", {}, session_id=session.id)
    assert not info.is_error, info.text
    assert (info.structured["id"], info.structured["user"], info.structured["bound"]) == (session.id, "agent-user", True)
    assert [(e["id"], e["channel"]) for e in info.structured["executions"]] == [(ran.run_id, "mcp")]
    named = _call(principal(), acme, "session_info", {"session": session.id, "limit": 1})
    assert named.structured["bound"] is False and len(named.structured["executions"]) == 1
    unbound = _call(principal(), acme, "session_info", {})
    assert unbound.is_error and unbound.error_code == "invalid_arguments" and "session" in unbound.text
    foreign = _call(principal(tenant="globex"), nexus_world["tenants"]["globex"], "session_info", {"session": session.id})
    assert foreign.is_error and foreign.error_code == "session_not_found"


def test_compute_metrics_runs_the_metrics_node(acme, principal):
    rows = [{"region": "eu", "v": 10}, {"region": "us", "v": 5}, {"region": "eu", "v": 20}, {"region": "us"}]
    result = _call(
        principal(role="viewer"), acme, "compute_metrics", {"rows": rows, "field": "v", "metrics": ["count", "sum", "max"]}
    )
    assert result.structured == {"count": 3, "sum": 35, "max": 20}
    grouped = _call(principal(), acme, "compute_metrics", {"rows": rows, "field": "v", "metrics": ["sum"], "group_by": "region"})
    assert grouped.structured == {"groups": {"eu": {"sum": 30}, "us": {"sum": 5}}}
    bad = _call(principal(), acme, "compute_metrics", {"rows": [{"v": "x"}], "field": "v"})
    assert bad.is_error and bad.error_code == "not_numeric" and "row [0]" in bad.text
    unknown = _call(principal(), acme, "compute_metrics", {"rows": rows, "metrics": ["median"]})
    assert unknown.is_error and "field" in unknown.text


def test_chart_then_email_with_the_chart_attached(acme, principal, mailoutbox, settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"  # Django's backend: pytest-django's in-memory mailbox
    operator = principal(role="operator")
    rows = [{"name": "Acme", "revenue": 120}, {"name": "Globex", "revenue": 80}]
    chart = _call(
        operator, acme, "render_chart", {"rows": rows, "kind": "bar", "x": "name", "y": "revenue", "title": "{{ 7*7 }}"}
    )
    assert not chart.is_error, chart.text
    artifact_id = chart.structured["artifact_id"]
    assert chart.structured["download_path"] == f"/api/v1/artifacts/{artifact_id}/download/"
    assert chart.structured["artifact"]["content_type"] == "image/png" and chart.structured["artifact"]["name"] == "chart.png"
    sent = _call(
        operator,
        acme,
        "send_email_report",
        {
            "to": ["boss@example.test"],
            "subject": "Revenue\nBcc: x@evil.test",
            "body": "{{ see attached }}",
            "artifact_ids": [artifact_id],
        },
    )
    assert not sent.is_error, sent.text
    [message] = mailoutbox
    assert message.to == ["boss@example.test"] and message.subject == "Revenue Bcc: x@evil.test"
    assert message.body == "{{ see attached }}"  # the caller's text, never a template
    assert [(name, kind) for name, _, kind in message.attachments] == [("chart.png", "image/png")]
    assert sent.structured["accepted"] == ["boss@example.test"]
    assert sent.structured["delivered_to"] == "django.core.mail.backends.locmem.EmailBackend"


def test_email_with_another_tenants_artifact_fails_and_sends_nothing(acme, principal, nexus_world, mailoutbox, settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"  # Django's backend: pytest-django's in-memory mailbox
    from apps.artifacts.ports import ArtifactsPort

    globex = nexus_world["tenants"]["globex"]
    connection.set_tenant(globex)
    foreign = ArtifactsPort().store(name="secret.txt", content_type="text/plain", data=b"globex only")
    result = _call(
        principal(),
        acme,
        "send_email_report",
        {"to": "a@example.test", "subject": "s", "body": "b", "artifact_ids": [foreign["id"]]},
    )
    assert result.is_error and result.error_code == "artifact_not_found"
    assert mailoutbox == []
    connection.set_tenant(acme)
    assert Artifact.objects.count() == 0


def test_query_dataset_and_list_datasets(acme, principal):
    from apps.datasets.services import dataset_upload

    rows = [{"name": "a", "revenue": 3}, {"name": "b", "revenue": 7}]
    dataset_upload(principal=principal(), tenant_id=acme.pk, name="customers", rows=rows)
    listed = _call(principal(role="viewer"), acme, "list_datasets", {})
    assert [d["name"] for d in listed.structured["datasets"]] == ["customers"]
    queried = _call(
        principal(role="viewer"),
        acme,
        "query_dataset",
        {"dataset": "customers", "order_by": [{"field": "revenue", "desc": True}]},
    )
    assert queried.structured == {"count": 2, "rows": [{"name": "b", "revenue": 7}, {"name": "a", "revenue": 3}]}
    bad = _call(
        principal(), acme, "query_dataset", {"dataset": "customers", "filters": [{"field": "nope", "op": "eq", "value": 1}]}
    )
    assert bad.is_error and bad.error_code == "unknown_field" and "filters[0].field" in bad.text
    missing = _call(principal(), acme, "query_dataset", {"dataset": "nope"})
    assert missing.is_error and missing.error_code == "dataset_not_found"


def test_every_platform_tool_has_a_strict_object_input_schema():
    for spec in PLATFORM_TOOLS.values():
        assert spec.input_schema["type"] == "object" and spec.input_schema.get("additionalProperties") is False, spec.name


def test_refused_chart_and_email_calls_are_audited_denials_and_store_and_send_nothing(acme, principal, mailoutbox, settings):
    settings.NEXUS_MAIL_TRANSPORT = "smtp"  # Django's backend: pytest-django's in-memory mailbox
    from apps.audit.models import AuditEvent

    viewer = principal(role="viewer")
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    chart = _call(viewer, acme, "render_chart", {"rows": [{"a": "x", "b": 1}], "kind": "bar", "x": "a", "y": "b"})
    email = _call(viewer, acme, "send_email_report", {"to": "a@example.test", "subject": "s", "body": "b"})
    assert (chart.error_code, email.error_code) == ("permission_denied", "permission_denied")
    denied = AuditEvent.objects.filter(id__gt=before, action="access.denied", tenant_id=acme.pk).order_by("id")
    assert [(row.target, row.actor) for row in denied] == [("artifact.create", viewer.actor), ("mail.send", viewer.actor)]
    assert Artifact.objects.count() == 0
    assert mailoutbox == []
    assert not AuditEvent.objects.filter(id__gt=before, action__in=["artifact.created", "mail.sent"]).exists()


def test_a_rendered_chart_is_audited_as_artifact_created_by_its_caller(acme, principal):
    from apps.audit.models import AuditEvent

    operator = principal(role="operator")
    chart = _call(operator, acme, "render_chart", {"rows": [{"a": "x", "b": 1}], "kind": "bar", "x": "a", "y": "b"})
    artifact_id = chart.structured["artifact_id"]
    [row] = AuditEvent.objects.filter(action="artifact.created", target=artifact_id)
    assert (row.tenant_id, row.actor, row.target) == (acme.pk, operator.actor, artifact_id)
    assert row.details == {
        "name": "chart.png",
        "content_type": "image/png",
        "size": chart.structured["artifact"]["size"],
        "source": "render_chart",
    }


def test_every_platform_tool_has_a_handler_and_the_catalogue_is_what_tools_list_answers(acme, principal, hello):
    from apps.catalogue.selectors import tool_catalogue
    from apps.mcp_bridge.tools import HANDLERS

    assert set(HANDLERS) == set(PLATFORM_TOOLS)
    listed = tool_list(principal=principal(), tenant=acme)
    catalogue = tool_catalogue(principal=principal(), tenant=acme)
    assert [tool.as_dict() for tool in catalogue] == [
        tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in listed
    ]


def test_nexus_mcp_tools_lists_what_tools_list_answers(acme, principal, hello, nexus):
    code, out, err = nexus("--tenant", "acme", "mcp", "tools", "--json")
    assert code == 0, err
    connection.set_tenant(acme)
    expected = [
        tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tool_list(principal=principal(), tenant=acme)
    ]
    assert json.loads(out) == {"tenant": "acme", "count": len(PLATFORM) + 1, "tools": expected}
