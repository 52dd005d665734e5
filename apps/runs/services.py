"""Run writes: start a run (inline fast path or Celery), execute it on a worker, cancel it."""

import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.access import require
from apps.audit.recorder import audit_record, audit_save, execution_audit_event
from apps.core.errors import Conflict, NotFound, ValidationFailed
from apps.core.ids import new_id
from apps.core.locks import run_lock_key
from apps.core.principal import Principal
from apps.core.tasks import task_send, task_wait
from apps.engine import CompiledWorkflow, InputError, RunResult, ThreadBudget
from apps.engine.schemas import schema_validator
from apps.events.hooks import connection_tenant, hooks_interested
from apps.events.origin import current_origin
from apps.events.presence import subscribers_present
from apps.events.services import publish
from apps.nexus_sessions.services import session_bind
from apps.quotas.limits import tenant_limits
from apps.quotas.services import execution_quota_consume, execution_quota_held
from apps.runs.models import TERMINAL_STATUSES, Channel, Execution, Status, execution_insert
from apps.runs.ports import ports_for
from apps.runs.queues import queue_for, tenant_slot_take
from apps.runs.waits import wait_slot_take
from apps.tenants.connection import current_owner, current_schema, require_current_tenant, use_tenant
from apps.workflows.compiled import compiled_version, definition_tests
from apps.workflows.selectors import deployment_target, version_definition, workflow_get, workflow_latest_version

logger = logging.getLogger(__name__)

EXECUTE_TASK = "runs.execute"
_CANCEL_POLL_S = 0.5


def _input_fields(error: InputError) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in error.errors:
        key = "inputs." + item["field"] if item["field"] else "inputs"
        fields[key] = item["message"] if key not in fields else f"{fields[key]}; {item['message']}"
    return fields


def _resolve(*, principal: Principal, tenant_id: int, ref: str, environment: str | None) -> tuple[str, str, str, int]:
    """(workflow id, slug, version id, version number) of what this call runs."""
    if not isinstance(ref, str) or not ref:
        raise ValidationFailed("workflow is required", fields={"workflow": "required"})
    if environment is None:  # a test run: the latest version, deployed or not
        workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=ref, action="workflow.test")
        version = workflow_latest_version(workflow)
        return workflow.id, workflow.slug, version.id, version.number
    require(principal, "workflow.execute", tenant_id=tenant_id)
    target = deployment_target(ref=ref, environment=environment)
    if target is None:
        workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=ref)  # NotFound if absent
        raise Conflict(
            f"workflow '{workflow.slug}' is not deployed to '{environment}'",
            code="not_deployed",
            fields={"environment": f"deploy the workflow to '{environment}' first"},
        )
    return target


def _prepare(
    *, principal: Principal, tenant_id: int, ref: str, environment: str | None, inputs
) -> tuple[CompiledWorkflow, Execution]:
    """Resolve what to run, validate the inputs, and build the (unsaved) execution: shared by every start."""
    workflow_id, slug, version_id, version_number = _resolve(
        principal=principal, tenant_id=tenant_id, ref=ref, environment=environment
    )
    compiled = compiled_version(version_id, lambda: version_definition(version_id))
    if not isinstance(inputs, dict):
        raise ValidationFailed("inputs must be a JSON object", code="invalid_inputs", fields={"inputs": "must be an object"})
    try:
        compiled.validate_inputs(inputs)
    except InputError as error:
        raise ValidationFailed(
            "inputs do not match the workflow's input schema", code="invalid_inputs", fields=_input_fields(error)
        ) from None
    execution = Execution(
        id=new_id("run"),
        workflow_id=workflow_id,
        workflow_slug=slug,
        version_id=version_id,
        version_number=version_number,
        environment=environment or "",
        inputs=inputs,
        created_at=timezone.now(),
    )
    return compiled, execution


def run_start(
    *,
    principal: Principal,
    tenant_id: int,
    workflow_ref: str,
    inputs,
    channel: str,
    environment: str | None = "production",
    session_id: str | None = None,
    wait: bool = True,
) -> Execution:
    """Start a run; when `wait`, return it finished (or still running once the wait budget is spent).
    Without `session_id`, the run joins the caller's declared session (the CLI's NEXUS_SESSION).
    A wait needs a slot (apps/runs/waits.py); past a cap the run is returned queued at once, with
    `wait_capped = True` set on it."""
    compiled, execution = _prepare(
        principal=principal, tenant_id=tenant_id, ref=workflow_ref, environment=environment, inputs=inputs
    )
    if session_id is None:
        session_id = current_origin().session_id
    if session_id is not None:
        session_bind(session_id=session_id)
    execution.channel = channel
    execution.actor = principal.actor
    execution.session_id = session_id
    # Counted once the run is valid, before it runs; given back if it is not stored. No quota: no call.
    limits = tenant_limits(tenant_id)
    quota = execution_quota_consume(tenant=limits) if limits.quota_executions is not None else None
    if wait and settings.NEXUS_INLINE_FAST_PATH and compiled.is_inline_eligible:
        result = compiled.execute(inputs, deadline=time.monotonic() + settings.NEXUS_INLINE_BUDGET_S)
        if result.status != Status.TIMED_OUT:  # over budget: hand the run to a worker with the full budget
            execution.inline = True
            execution.started_at = execution.created_at
            _apply_result(execution, result)
            with execution_quota_held(quota):  # the run and its audit row: one statement, one commit
                execution_insert(execution, audit=execution_audit_event(execution, tenant_id=tenant_id, principal=principal))
            if _events_wanted(session_id):
                _publish_finished(execution, source=channel)
            return execution
    with execution_quota_held(quota), transaction.atomic():
        execution.save(force_insert=True)
        audit_save(execution_audit_event(execution, tenant_id=tenant_id, principal=principal))
        if _events_wanted(session_id):
            _publish_execution(execution, "execution.queued", source=channel)
        schema = current_schema()
        queue = queue_for(limits)
        transaction.on_commit(lambda: _enqueue(execution.id, schema, queue))
    if wait:
        if channel == Channel.CLI:  # the `nexus` command waits in its own process: no server thread to protect
            return run_wait(run_id=execution.id, timeout_s=settings.NEXUS_WAIT_TIMEOUT_S)
        with wait_slot_take(tenant_id=tenant_id) as slot:
            if slot.taken:
                return run_wait(run_id=execution.id, timeout_s=settings.NEXUS_WAIT_TIMEOUT_S)
        execution.wait_capped = True  # not a field: tells the door why a waiting caller got the run unfinished
    return execution


def _events_wanted(session_id: str | None) -> bool:
    """Execution events are published (stored, then sent) for runs bound to a session, or while the tenant
    has live subscribers (apps/events/presence.py) or webhook subscriptions to execution events (publish hooks,
    apps/events/hooks.py): an inline run nobody watches pays no event INSERT and no Redis send, only per-process
    flags read from caches."""
    if session_id is not None:
        return True
    tenant_id, tenant_slug = connection_tenant()
    return subscribers_present(tenant_slug) or hooks_interested(tenant_id, "execution.*")


_FINISHED_EVENTS: dict[str, str] = {
    Status.COMPLETED: "execution.completed",
    Status.COMPLETED_WITH_RECOVERY: "execution.completed",
    Status.FAILED: "execution.failed",
    Status.TIMED_OUT: "execution.failed",
    Status.CANCELLED: "execution.cancelled",
}


def _publish_execution(execution: Execution, type: str, *, source: str | None, data: dict | None = None) -> None:
    publish(
        type=type,
        source=source,
        session_id=execution.session_id,
        data={
            "execution_id": execution.id,
            "workflow": execution.workflow_slug,
            "status": execution.status,
            "channel": execution.channel,
            **({"parent_execution_id": execution.parent_id} if execution.parent_id else {}),
            **(data or {}),
        },
    )


def _publish_finished(execution: Execution, *, source: str | None) -> None:
    extra = {"duration_ms": execution.duration_ms, "outputs": execution.outputs}
    if execution.error:
        extra["error"] = execution.error
    _publish_execution(execution, _FINISHED_EVENTS[execution.status], source=source, data=extra)


def _enqueue(run_id: str, schema: str, queue: str | None = None) -> None:
    # Sent by name: services never import task modules. The schema header routes the worker to the tenant;
    # the queue is the tenant's own under strict isolation (apps/runs/queues.py).
    task_send(EXECUTE_TASK, args=[run_id], task_id=run_id, schema=schema, queue=queue)


def run_wait(*, run_id: str, timeout_s: float) -> Execution:
    task_wait(run_id, timeout_s=timeout_s)
    return Execution.objects.get(id=run_id)


def _apply_result(execution: Execution, result: RunResult) -> None:
    execution.status = result.status
    execution.outputs = result.outputs if result.status in (Status.COMPLETED, Status.COMPLETED_WITH_RECOVERY) else None
    execution.error = result.error
    execution.steps = result.steps
    execution.recovery = result.recovery
    execution.finished_at = timezone.now()
    execution.duration_ms = round(result.duration_ms, 3)


class RunBusy(Exception):
    """Another live worker holds this run; the task should look again later."""


def run_execute(*, run_id: str) -> str:
    """Execute a queued run on a worker. Safe to call twice: a finished run is left alone, and a session
    advisory lock (released by PostgreSQL if the worker dies) keeps two copies from running at once."""
    key = run_lock_key(run_id)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        if not cursor.fetchone()[0]:
            raise RunBusy(run_id)
    slot = None
    try:
        execution = Execution.objects.filter(id=run_id).first()
        if execution is None:
            logger.warning("run %s does not exist in schema %s", run_id, current_schema())
            return "missing"
        if execution.status in TERMINAL_STATUSES:
            return execution.status
        now = timezone.now()
        events = _events_wanted(execution.session_id)  # events emitted here have source "worker"
        if execution.cancel_requested:
            with transaction.atomic():
                Execution.objects.filter(id=run_id).update(status=Status.CANCELLED, finished_at=now)
                execution.status, execution.finished_at = Status.CANCELLED, now
                audit_save(execution_audit_event(execution, tenant_id=require_current_tenant().pk))
            if events:
                execution.status = Status.CANCELLED
                _publish_finished(execution, source="worker")
            return Status.CANCELLED
        # Under the run's lock and before it is marked running: without a slot it stays queued (TenantBusy).
        slot = tenant_slot_take(tenant=require_current_tenant(), run_id=run_id)
        execution.status = Status.RUNNING
        execution.started_at = timezone.now()
        execution.attempt += 1
        execution.steps = []
        execution.save(update_fields=["status", "started_at", "attempt", "steps"])
        if events:
            _publish_execution(execution, "execution.started", source="worker", data={"attempt": execution.attempt})
        compiled = compiled_version(execution.version_id, lambda: version_definition(execution.version_id))
        result = compiled.execute(
            execution.inputs,
            deadline=time.monotonic() + settings.NEXUS_ENGINE_LIMITS["max_run_seconds"],
            should_cancel=_cancel_checker(run_id),
            on_step=_step_recorder(execution, events=events),
            ports=ports_for(execution, run_child=run_child),
            depth=execution.depth,
            worker_scope=_tenant_scope(current_owner()),
        )
        _apply_result(execution, result)
        with transaction.atomic():  # the final state and its audit row together: exactly one per run
            execution.save(update_fields=["status", "outputs", "error", "steps", "recovery", "finished_at", "duration_ms"])
            audit_save(execution_audit_event(execution, tenant_id=require_current_tenant().pk))
        if events:
            _publish_finished(execution, source="worker")
        return execution.status
    finally:
        if slot is not None:
            slot.release()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _cancel_checker(run_id: str):
    next_poll = 0.0
    cancelled = False

    def should_cancel() -> bool:
        nonlocal next_poll, cancelled
        now = time.monotonic()
        if not cancelled and now >= next_poll:
            next_poll = now + _CANCEL_POLL_S
            cancelled = Execution.objects.filter(id=run_id, cancel_requested=True).exists()
        return cancelled

    return should_cancel


def _step_recorder(execution: Execution, *, events: bool = False):
    def on_step(step: dict) -> None:
        execution.steps = [*execution.steps, step]
        Execution.objects.filter(id=execution.id).update(steps=execution.steps)
        if events:
            node = {key: step.get(key) for key in ("node", "type", "status", "duration_ms", "attempts", "error")}
            _publish_execution(execution, "execution.node_completed", source="worker", data={"step": node})

    return on_step


def _tenant_scope(tenant):
    """For nodes the engine runs on its worker threads: each thread's own connection must be in the run's
    tenant schema, and must be closed when the node is done (threads are not Django requests)."""

    @contextmanager
    def scope():
        use_tenant(tenant)
        try:
            yield
        finally:
            connection.close()

    return scope


def run_child(
    *,
    parent: Execution,
    workflow_ref: str,
    inputs,
    environment: str,
    depth: int,
    deadline: float | None = None,
    threads: ThreadBudget | None = None,
) -> Execution:
    """Run a deployed workflow of the same tenant for a `subworkflow` node, in this process: the parent
    already holds a worker, and queueing the child behind it could deadlock a busy pool. The parent run was
    authorised and its deployed definition names the child, so the child runs under the parent's actor.
    `deadline` (time.monotonic()) is what is left of the calling node's time: a child never outlives it.
    `threads` is the run tree's budget of worker threads: the child's branches use its free threads, or run
    one by one on this (the calling node's) thread, so a tree of fan-outs holds at most max_parallel_nodes
    worker threads and their database connections, not a pool per child."""
    tenant = require_current_tenant()
    principal = Principal(
        kind="system", actor=parent.actor, tenant_id=tenant.pk, tenant_slug=getattr(tenant, "slug", None), role="operator"
    )
    compiled, child = _prepare(principal=principal, tenant_id=tenant.pk, ref=workflow_ref, environment=environment, inputs=inputs)
    child.channel = parent.channel
    child.actor = parent.actor
    child.session_id = parent.session_id
    child.parent_id = parent.id
    child.depth = depth
    child.status = Status.RUNNING
    child.attempt = 1
    child.started_at = child.created_at
    limits = tenant_limits(tenant.pk)
    quota = execution_quota_consume(tenant=limits) if limits.quota_executions is not None else None
    with execution_quota_held(quota):  # a child is a stored run: it counts, and is refused at the limit
        execution_insert(child)
    # Its events carry the parent's session, so they reach the subscribers of the session the parent runs in.
    events, source = _events_wanted(child.session_id), parent.channel if parent.inline else "worker"
    if events:
        _publish_execution(child, "execution.started", source=source, data={"attempt": child.attempt})
    result = compiled.execute(
        inputs,
        deadline=min(deadline or float("inf"), time.monotonic() + settings.NEXUS_ENGINE_LIMITS["max_run_seconds"]),
        ports=ports_for(child, run_child=run_child),
        depth=depth,
        worker_scope=_tenant_scope(tenant),
        threads=threads,
    )
    _apply_result(child, result)
    with transaction.atomic():
        child.save(update_fields=["status", "outputs", "error", "steps", "recovery", "finished_at", "duration_ms"])
        audit_save(execution_audit_event(child, tenant_id=tenant.pk))
    if events:
        _publish_finished(child, source=source)
    return child


def run_cancel(*, principal: Principal, tenant_id: int, run_id: str) -> Execution:
    require(principal, "execution.cancel", tenant_id=tenant_id)
    with transaction.atomic():
        execution = Execution.objects.select_for_update().filter(id=run_id).first()
        if execution is None:
            raise NotFound(f"execution '{run_id}' does not exist", code="execution_not_found")
        if execution.status in TERMINAL_STATUSES:
            raise Conflict(f"execution is already {execution.status}", code="execution_finished")
        execution.cancel_requested = True
        if execution.status == Status.QUEUED:
            execution.status = Status.CANCELLED
            execution.finished_at = timezone.now()
        execution.save(update_fields=["cancel_requested", "status", "finished_at"])
        # The caller's request; a run that was running gets its final row from the worker when it stops.
        audit_record(
            action="execution.cancelled",
            tenant_id=tenant_id,
            principal=principal,
            target=execution.id,
            details={"workflow": execution.workflow_slug, "status": execution.status},
        )
        if execution.status == Status.CANCELLED and _events_wanted(execution.session_id):
            _publish_finished(execution, source=None)
    return execution


def run_suite(*, principal: Principal, tenant_id: int, workflow_ref: str, suite: str | None, channel: str) -> dict:
    """Run the test cases of the workflow's latest version (those of `suite`, or all) and compare."""
    workflow = workflow_get(principal=principal, tenant_id=tenant_id, ref=workflow_ref, action="workflow.test")
    latest = workflow_latest_version(workflow)
    cases = [case for case in definition_tests(latest.definition) if suite is None or case.get("suite", "integration") == suite]
    results = []
    for case in cases:
        execution = run_start(
            principal=principal,
            tenant_id=tenant_id,
            workflow_ref=workflow.id,
            inputs=case.get("inputs", {}),
            channel=channel,
            environment=None,
        )
        failures = _case_failures(case, execution)
        results.append(
            {
                "name": case["name"],
                "suite": case.get("suite", "integration"),
                "status": "failed" if failures else "passed",
                "execution_id": execution.id,
                "run_status": execution.status,
                "outputs": execution.outputs,
                "failures": failures,
            }
        )
    passed = sum(1 for r in results if r["status"] == "passed")
    return {
        "workflow": workflow.slug,
        "version": latest.number,
        "suite": suite,
        "passed": passed,
        "failed": len(results) - passed,
        "total": len(results),
        "cases": results,
    }


def _case_failures(case: dict, execution: Execution) -> list[str]:
    failures = []
    expected_status = case.get("expect_status", "completed" if "expect" in case or "expect_schema" in case else None)
    if expected_status and execution.status != expected_status:
        failures.append(
            f"status {execution.status}, expected {expected_status}: {(execution.error or {}).get('message', '')}".rstrip(": ")
        )
    outputs = execution.outputs or {}
    for key, value in (case.get("expect") or {}).items():
        if key not in outputs:
            failures.append(f"output '{key}' missing")
        elif outputs[key] != value:
            failures.append(f"output '{key}' is {outputs[key]!r}, expected {value!r}")
    if "expect_schema" in case:
        for error in schema_validator(case["expect_schema"]).iter_errors(outputs):
            path = ".".join(str(p) for p in error.absolute_path) or "outputs"
            failures.append(f"{path}: {error.message}")
    return failures
