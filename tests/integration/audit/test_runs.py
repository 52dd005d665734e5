"""Runs: one row when a run finishes (plus one when queued for a worker), the inline one in the run's own INSERT."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.context import audit_context, current_context
from apps.runs.services import run_cancel, run_execute, run_start
from apps.workflows.services import workflow_create, workflow_deploy
from tests.integration.audit.conftest import only

pytestmark = pytest.mark.django_db

PARENT = {
    "nodes": [{"id": "child", "type": "subworkflow", "config": {"workflow": "hello", "inputs": {"name": "'kid'"}}}],
    "outputs": {"child_run": "nodes.child.execution_id"},
}


def _deploy(owner, acme, slug, **kwargs):
    workflow_create(principal=owner, tenant_id=acme.pk, slug=slug, **kwargs)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref=slug)


def test_the_inline_run_and_its_audit_row_are_one_statement(owner, acme, audit_rows):
    from apps.events.presence import subscribers_forget

    _deploy(owner, acme, "hello", template="basic")
    subscribers_forget("acme")  # nobody watches acme (another test's WebSocket may have left the flag up)
    mark = audit_rows()[-1].seq

    with CaptureQueriesContext(connection) as queries:
        run = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "x"}, channel="mcp")

    writes = [q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(writes) == 1 and writes[0].startswith("WITH run AS (INSERT INTO runs_execution")
    assert "INSERT INTO public.audit_auditevent" in writes[0]
    row = only(audit_rows(after=mark), action="execution.completed", target=run.id, channel="mcp", actor=owner.actor)
    assert row.ts == run.finished_at and row.tenant_id == acme.pk


def test_a_queued_run_has_a_queued_row_and_the_workers_final_row(owner, acme, audit_rows):
    _deploy(owner, acme, "hello", template="basic")
    mark = audit_rows()[-1].seq
    with audit_context(channel="api", ip="192.0.2.10", request_id="req-queued"):
        queued = run_start(
            principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "w"}, channel="api", wait=False
        )

    with audit_context(channel="worker", request_id="req-queued"):  # what the Celery task context carries over
        assert run_execute(run_id=queued.id) == "completed"
        assert run_execute(run_id=queued.id) == "completed"  # redelivered: no second final row

    first, final = audit_rows(after=mark)
    assert (first.action, first.target, first.channel, first.ip) == ("execution.queued", queued.id, "api", "192.0.2.10")
    assert (final.action, final.target, final.channel, final.actor) == ("execution.completed", queued.id, "api", owner.actor)
    assert final.request_id == first.request_id == "req-queued" and final.ip is None
    assert final.details["inline"] is False and final.actor_type == "api_key"


def test_a_child_run_gets_its_own_row(owner, acme, audit_rows):
    _deploy(owner, acme, "hello", template="basic")
    _deploy(owner, acme, "parent", definition=PARENT)
    mark = audit_rows()[-1].seq
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="parent", inputs={}, channel="cli", wait=False)

    assert run_execute(run_id=queued.id) == "completed"

    rows = audit_rows(after=mark)
    assert [(r.action, r.channel) for r in rows] == [
        ("execution.queued", "cli"),
        ("execution.completed", "cli"),
        ("execution.completed", "cli"),
    ]
    assert rows[1].details["parent_id"] == queued.id and rows[2].target == queued.id


def test_cancelling_a_queued_run(owner, acme, audit_rows):
    _deploy(owner, acme, "hello", template="basic")
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "c"}, channel="api", wait=False)
    mark = audit_rows()[-1].seq

    with audit_context(channel="cli"):
        run_cancel(principal=owner, tenant_id=acme.pk, run_id=queued.id)
    assert run_execute(run_id=queued.id) == "cancelled"

    row = only(audit_rows(after=mark), action="execution.cancelled", target=queued.id, channel="cli", actor=owner.actor)
    assert row.details == {"workflow": "hello", "status": "cancelled"}


def test_a_cancel_seen_by_the_worker_is_the_final_row(owner, acme, audit_rows):
    from apps.runs.models import Execution

    _deploy(owner, acme, "hello", template="basic")
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "c"}, channel="api", wait=False)
    Execution.objects.filter(id=queued.id).update(status="running", cancel_requested=True)  # a worker died mid-run
    mark = audit_rows()[-1].seq

    assert run_execute(run_id=queued.id) == "cancelled"

    row = only(audit_rows(after=mark), action="execution.cancelled", target=queued.id, channel="api", actor=owner.actor)
    assert row.details["status"] == "cancelled" and row.details["inline"] is False


def test_celery_tasks_carry_the_request_id_and_run_as_worker():
    from types import SimpleNamespace

    from apps.audit.celery_context import HEADER, _enter, _leave, _send_request_id

    headers: dict = {}
    with audit_context(channel="api", request_id="req-7"):
        _send_request_id(headers=headers)
    assert headers == {HEADER: "req-7"}

    task = SimpleNamespace(request=SimpleNamespace(headers={HEADER: "req-7"}, get=lambda name: None))
    _enter(task_id="run_x", task=task)
    assert (current_context().channel, current_context().request_id) == ("worker", "req-7")
    _leave(task_id="run_x")
    assert current_context().channel == "system"

    task = SimpleNamespace(request=SimpleNamespace(headers=None, get=lambda name: None))
    _enter(task_id="run_from_beat", task=task)
    assert current_context().request_id == "run_from_beat"
    _leave(task_id="run_from_beat")
