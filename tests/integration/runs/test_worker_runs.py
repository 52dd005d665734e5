"""What a worker does with a queued run, driven in-process: subworkflows, events, cancellation, idempotence."""

import time

import pytest

from apps.events.models import Event
from apps.runs.models import Execution
from apps.runs.services import run_cancel, run_execute, run_start
from apps.workflows.services import workflow_create, workflow_deploy

pytestmark = pytest.mark.django_db

PARENT = {
    "inputs": {"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]},
    "nodes": [
        {"id": "child", "type": "subworkflow", "config": {"workflow": "hello", "inputs": {"name": "inputs.who"}}},
        {"id": "shout", "type": "template", "config": {"template": "{{ nodes.child.outputs.message | upper }}"}},
    ],
    "edges": [{"from": "child", "to": "shout"}],
    "outputs": {"loud": "nodes.shout", "child_run": "nodes.child.execution_id"},
}


def _deploy(owner, acme, slug, **kwargs):
    workflow_create(principal=owner, tenant_id=acme.pk, slug=slug, **kwargs)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref=slug)


def test_a_subworkflow_runs_as_a_child_run(owner, acme):
    _deploy(owner, acme, "hello", template="basic")
    _deploy(owner, acme, "parent", definition=PARENT)
    queued = run_start(
        principal=owner, tenant_id=acme.pk, workflow_ref="parent", inputs={"who": "kid"}, channel="api", wait=False
    )
    assert queued.status == "queued"
    assert run_execute(run_id=queued.id) == "completed"
    parent = Execution.objects.get(id=queued.id)
    assert parent.outputs["loud"] == "HELLO, KID!"
    child = Execution.objects.get(id=parent.outputs["child_run"])
    assert (child.parent_id, child.depth, child.status, child.channel) == (parent.id, 1, "completed", "api")
    assert child.outputs == {"message": "Hello, kid!"}


def test_a_childs_events_reach_the_parents_session(owner, acme):
    from apps.nexus_sessions.services import session_create

    _deploy(owner, acme, "hello", template="basic")
    _deploy(owner, acme, "parent", definition=PARENT)
    session = session_create(principal=owner, tenant_id=acme.pk)
    queued = run_start(
        principal=owner,
        tenant_id=acme.pk,
        workflow_ref="parent",
        inputs={"who": "kid"},
        channel="api",
        session_id=session.id,
        wait=False,
    )
    assert run_execute(run_id=queued.id) == "completed"
    child_id = Execution.objects.get(id=queued.id).outputs["child_run"]
    events = Event.objects.filter(session_id=session.id, type__startswith="execution.").order_by("id")
    assert [(e.type, e.source, e.data["execution_id"], e.data.get("parent_execution_id")) for e in events] == [
        ("execution.queued", "api", queued.id, None),
        ("execution.started", "worker", queued.id, None),
        ("execution.started", "worker", child_id, queued.id),
        ("execution.completed", "worker", child_id, queued.id),
        ("execution.node_completed", "worker", queued.id, None),
        ("execution.node_completed", "worker", queued.id, None),
        ("execution.completed", "worker", queued.id, None),
    ]


def test_subworkflow_depth_is_limited(owner, acme, settings):
    settings.NEXUS_ENGINE_LIMITS = {**settings.NEXUS_ENGINE_LIMITS, "max_subworkflow_depth": 2}
    loop = {
        "nodes": [{"id": "again", "type": "subworkflow", "config": {"workflow": "loop", "inputs": {}}}],
        "outputs": {"r": "nodes.again"},
    }
    _deploy(owner, acme, "loop", definition=loop)
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="loop", inputs={}, channel="cli", wait=False)
    assert run_execute(run_id=queued.id) == "failed"
    runs = Execution.objects.order_by("depth")
    assert [r.depth for r in runs] == [0, 1, 2]
    assert runs[2].error["code"] == "depth_exceeded"


def test_a_child_run_gets_what_is_left_of_its_parents_time(owner, acme):
    slow = {
        "inputs": {"type": "object"},
        "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 5}}],
        "outputs": {"done": "`true`"},
    }
    parent = {
        "nodes": [{"id": "child", "type": "subworkflow", "config": {"workflow": "slow"}, "timeout_s": 1}],
        "outputs": {"r": "nodes.child"},
    }
    _deploy(owner, acme, "slow", definition=slow)
    _deploy(owner, acme, "impatient", definition=parent)
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="impatient", inputs={}, channel="api", wait=False)
    started = time.monotonic()
    assert run_execute(run_id=queued.id) == "failed"
    assert time.monotonic() - started < 3  # not the child's own 5 s delay, nor a fresh max_run_seconds
    child = Execution.objects.get(parent_id=queued.id)
    assert child.status == "timed_out"


def test_notify_stores_an_event_with_the_run_channel(owner, acme):
    _deploy(owner, acme, "processor", template="data-processor")
    rows = [{"id": 1, "category": "a", "amount": 3}, {"id": 2, "amount": -1}]
    queued = run_start(
        principal=owner, tenant_id=acme.pk, workflow_ref="processor", inputs={"rows": rows}, channel="cli", wait=False
    )
    assert run_execute(run_id=queued.id) == "completed"
    run = Execution.objects.get(id=queued.id)
    assert run.outputs["accepted"] == 1 and run.outputs["total"] == 3
    event = Event.objects.get(id=run.outputs["event"])
    assert (event.type, event.source) == ("data.processed", "cli")
    assert event.data == {"rows": 1, "total": 3, "execution_id": run.id}


def test_a_cancelled_queued_run_never_runs_and_a_second_delivery_is_a_no_op(owner, acme):
    _deploy(owner, acme, "hello", template="basic")
    queued = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "x"}, channel="api", wait=False)
    assert run_cancel(principal=owner, tenant_id=acme.pk, run_id=queued.id).status == "cancelled"
    assert run_execute(run_id=queued.id) == "cancelled"
    assert Execution.objects.get(id=queued.id).steps == []
    again = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hello", inputs={"name": "y"}, channel="api", wait=False)
    assert run_execute(run_id=again.id) == "completed"
    assert run_execute(run_id=again.id) == "completed"  # redelivered: left alone
    assert Execution.objects.get(id=again.id).attempt == 1
