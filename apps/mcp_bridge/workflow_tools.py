"""Running workflows as tools: `workflow_<slug>` (apps/catalogue lists one for each workflow deployed to
production), `run_workflow`, and how a run is rendered as a tool result. Runs go through `run_start` with
channel `mcp`, like every other door's runs."""

from typing import Any

from django.conf import settings

from apps.catalogue.tools import ENVIRONMENT
from apps.core.errors import ApplicationError
from apps.mcp_bridge.results import Call, PendingRun, ToolResult, error_result, failure, ok
from apps.runs.models import TERMINAL_STATUSES, Channel, Execution, Status
from apps.runs.services import run_start
from apps.runs.waits import CAPPED
from apps.workflows.compiled import compiled_version
from apps.workflows.selectors import deployment_target, version_definition

_FAILED = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})
_META_KEY = "nexus/execution"


# ------------------------------------------------------------------------------------------------ runs


def _compiled_for(ref, environment: str):
    """The compiled version a run of `ref` would use, or None when nothing is deployed there (run_start says why)."""
    if not isinstance(ref, str) or not ref or not isinstance(environment, str):
        return None
    target = deployment_target(ref=ref, environment=environment)
    if target is None:
        return None
    version_id = target[2]
    return compiled_version(version_id, lambda: version_definition(version_id))


def start_run(call: Call, *, ref, inputs, environment: str, wait: bool, finish) -> ToolResult | PendingRun:
    """Start a run for an MCP caller. A run the web process may finish inline (pure, CPU-light nodes) is run
    inline; any other run goes to a worker at once and, when the caller waits, server.py polls it so that it
    can send progress notifications instead of blocking a thread on the result."""
    compiled = _compiled_for(ref, environment) if wait else None
    inline = bool(compiled is not None and compiled.is_inline_eligible and settings.NEXUS_INLINE_FAST_PATH)
    try:
        execution = run_start(
            principal=call.principal,
            tenant_id=call.tenant.pk,
            workflow_ref=ref,
            inputs=inputs,
            channel=Channel.MCP,
            environment=environment,
            session_id=call.session_id,
            wait=inline,
        )
    except ApplicationError as error:
        return error_result(error)
    if not wait or execution.status in TERMINAL_STATUSES:
        return finish(execution)
    return PendingRun(run_id=execution.id, total_nodes=len(compiled.node_ids) if compiled else 0, finish=finish)


def _execution_meta(execution: Execution) -> dict[str, Any]:
    return {
        _META_KEY: {
            "id": execution.id,
            "status": execution.status,
            "workflow": execution.workflow_slug,
            "version": execution.version_number,
            "duration_ms": execution.duration_ms,
        }
    }


def _recovery_note(execution: Execution) -> str:
    parts = []
    for item in execution.recovery or []:
        error = item.get("error") or {}
        reason = f"{error.get('code', 'error')}: {error.get('message', '')}".rstrip(": ")
        if item.get("action") == "fallback":
            parts.append(f"node '{item.get('node')}' failed ({reason}); fallback '{item.get('fallback')}' ran")
        else:
            parts.append(f"node '{item.get('node')}' failed ({reason}); the run continued")
    return "; ".join(parts)


def _run_failure(execution: Execution) -> ToolResult:
    error = execution.error or {}
    where = f" at node '{error['node']}'" if error.get("node") else ""
    message = error.get("message") or execution.status
    return failure(
        f"run {execution.id} {execution.status}{where}: {message}",
        code=error.get("code") or execution.status,
        run_id=execution.id,
    )


def _still_running(execution: Execution, wait: str | None) -> ToolResult:
    if wait == CAPPED:
        return failure(
            f"run {execution.id} is {execution.status}: this tenant already has {settings.NEXUS_WAIT_MAX_PER_TENANT} "
            "calls waiting on runs, so this one was not kept waiting; follow it with get_execution",
            code="wait_capped",
            run_id=execution.id,
        )
    return failure(
        f"run {execution.id} is still {execution.status} after the wait budget ({settings.NEXUS_WAIT_TIMEOUT_S:g} s); "
        "follow it with get_execution",
        code="still_running",
        run_id=execution.id,
    )


def workflow_tool_result(execution: Execution, *, wait: str | None = None) -> ToolResult:
    """A `workflow_<slug>` call: the structured content is the workflow's outputs, the run's id rides in _meta.
    `wait` is "capped" when the caller was not kept waiting (apps/runs/waits.py)."""
    if execution.status in _FAILED:
        return _run_failure(execution)
    if execution.status not in TERMINAL_STATUSES:
        return _still_running(execution, wait)
    note = f"execution {execution.id} {execution.status} in {execution.duration_ms} ms"
    if execution.status == Status.COMPLETED_WITH_RECOVERY:
        note += f": {_recovery_note(execution)}"
    return ok(execution.outputs or {}, note=note, run_id=execution.id, meta=_execution_meta(execution))


def run_envelope(execution: Execution) -> dict[str, Any]:
    return {
        "execution_id": execution.id,
        "status": execution.status,
        "workflow": execution.workflow_slug,
        "version": execution.version_number,
        "outputs": execution.outputs,
        "error": execution.error,
        "recovery": execution.recovery or [],
        "duration_ms": execution.duration_ms,
    }


def run_workflow_result(execution: Execution, *, wait: str | None = None) -> ToolResult:
    """`run_workflow`: the run's envelope; a finished failure is a tool error, a run still going is not.
    `wait` is "capped" when the caller was not kept waiting (apps/runs/waits.py): the envelope says so."""
    if execution.status in _FAILED:
        return _run_failure(execution)
    note = None
    if execution.status not in TERMINAL_STATUSES:
        note = f"execution {execution.id} is {execution.status}: follow it with get_execution"
        if wait == CAPPED:
            note += " (not kept waiting: too many calls of this tenant already wait on runs)"
    elif execution.status == Status.COMPLETED_WITH_RECOVERY:
        note = _recovery_note(execution)
    envelope = run_envelope(execution)
    if wait == CAPPED and execution.status not in TERMINAL_STATUSES:
        envelope["wait"] = CAPPED
    return ok(envelope, note=note, run_id=execution.id, meta=_execution_meta(execution))


def call_workflow_tool(call: Call, slug: str) -> ToolResult | PendingRun:
    return start_run(call, ref=slug, inputs=call.arguments, environment=ENVIRONMENT, wait=True, finish=workflow_tool_result)


def run_workflow(call: Call) -> ToolResult | PendingRun:
    args = call.arguments
    return start_run(
        call,
        ref=args["workflow"],
        inputs=args.get("inputs", {}),
        environment=args.get("environment", ENVIRONMENT),
        wait=args.get("wait", True),
        finish=run_workflow_result,
    )


HANDLERS = {"run_workflow": run_workflow}
