"""Workflows as tools: `workflow_<slug>` for each workflow deployed to production, `run_workflow`, and how a run
is rendered as a tool result. Runs go through `run_start` with channel `mcp`, like every other door's runs."""

import re
from typing import Any

from django.conf import settings

from apps.core.errors import ApplicationError
from apps.engine import default_registry
from apps.mcp_bridge.results import Call, PendingRun, ToolResult, ToolSpec, error_result, failure, ok
from apps.runs.models import TERMINAL_STATUSES, Channel, Execution, Status
from apps.runs.services import run_start
from apps.runs.waits import CAPPED
from apps.workflows.compiled import compiled_version
from apps.workflows.models import Deployment, Workflow
from apps.workflows.selectors import deployment_target, deployments_by_workflow, version_definition, workflow_list

PREFIX = "workflow_"
ENVIRONMENT = "production"
# Workflow slugs: lower-case letters, digits and '-' (apps/workflows/services.py); anything else is no tool.
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
_FAILED = frozenset({Status.FAILED, Status.TIMED_OUT, Status.CANCELLED})
_META_KEY = "nexus/execution"


def tool_name(slug: str) -> str:
    return PREFIX + slug


def slug_of(name: str) -> str | None:
    """The workflow slug a `workflow_<slug>` tool name refers to, or None when the name cannot be one."""
    if not name.startswith(PREFIX):
        return None
    slug = name[len(PREFIX) :]
    return slug if _SLUG.match(slug) else None


def production_deployment(deployments: list[Deployment]) -> Deployment | None:
    return next((d for d in deployments if d.environment == ENVIRONMENT), None)


def input_schema(definition: dict) -> dict[str, Any]:
    """The workflow's input JSON Schema; MCP wants `"type": "object"` at the root, which workflow inputs always are."""
    schema = dict(definition.get("inputs") or {})
    schema.setdefault("type", "object")
    return schema


def output_schema(definition: dict) -> dict[str, Any]:
    """An object with one property per declared output. Outputs are expressions, so their types are not known
    statically; a fallback can make any of them null, so none is required."""
    return {"type": "object", "properties": {name: {} for name in definition.get("outputs") or {}}}


def _side_effects(definition: dict) -> bool:
    """Whether any node may touch the world (mail, HTTP, artifacts...): an unknown type counts as one."""
    for node in definition.get("nodes") or []:
        node_type = default_registry.get(node.get("type", "")) if isinstance(node, dict) else None
        if node_type is None or not node_type.pure:
            return True
    return False


def workflow_tool_spec(workflow: Workflow, deployment: Deployment) -> ToolSpec:
    definition = deployment.version.definition
    effects = _side_effects(definition)
    about = (workflow.description or workflow.name or workflow.slug).strip()
    return ToolSpec(
        name=tool_name(workflow.slug),
        title=workflow.name or workflow.slug,
        description=(
            f"{about}\n\nRuns workflow '{workflow.slug}' (deployed version {deployment.version.number}, {ENVIRONMENT}) "
            "with these arguments as its inputs and returns its outputs. The run is recorded: its id is in the "
            "result's text and _meta."
        ),
        input_schema=input_schema(definition),
        output_schema=output_schema(definition),
        handler=_call_unbound,
        read_only=False,
        destructive=effects,
        idempotent=not effects,
        open_world=effects,
        extra={"workflow_id": workflow.id, "version": deployment.version.number},
    )


def _call_unbound(call: Call) -> ToolResult:  # pragma: no cover - workflow tools are dispatched by name
    raise AssertionError("workflow tools are called through call_workflow_tool")


def workflow_tool_specs(*, principal, tenant) -> list[ToolSpec]:
    """One tool per workflow of the caller's tenant deployed to production (needs `workflow.read`)."""
    workflows = workflow_list(principal=principal, tenant_id=tenant.pk)
    deployments = deployments_by_workflow([w.id for w in workflows])
    specs = []
    for workflow in workflows:
        deployment = production_deployment(deployments[workflow.id])
        if deployment is not None and _SLUG.match(workflow.slug):
            specs.append(workflow_tool_spec(workflow, deployment))
    return specs


def is_deployed(slug: str) -> bool:
    """Whether `slug` names a workflow deployed to production in the current schema (the caller's tenant)."""
    return deployment_target(ref=slug, environment=ENVIRONMENT) is not None


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


_RUN_OUTPUT = {
    "type": "object",
    "properties": {
        "execution_id": {"type": "string"},
        "status": {"type": "string", "enum": list(Status.values)},
        "workflow": {"type": "string"},
        "version": {"type": "integer"},
        "outputs": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "error": {"anyOf": [{"type": "object"}, {"type": "null"}]},
        "recovery": {"type": "array"},
        "duration_ms": {"anyOf": [{"type": "number"}, {"type": "null"}]},
        "wait": {"enum": ["capped"], "description": "present when the call was not kept waiting (too many waits)"},
    },
    "required": ["execution_id", "status"],
}

RUN_WORKFLOW = ToolSpec(
    name="run_workflow",
    title="Run a workflow",
    description=(
        "Run a deployed workflow of this tenant by id (wf_…) or slug with the given inputs. With wait=true (the "
        "default) the call returns when the run finishes (progress notifications meanwhile, if you sent a progress "
        "token); with wait=false it returns the execution id at once (follow it with get_execution)."
    ),
    input_schema={
        "type": "object",
        "properties": {
            "workflow": {"type": "string", "minLength": 1, "description": "workflow id (wf_…) or slug"},
            "inputs": {"type": "object", "default": {}, "description": "the workflow's inputs (see describe_workflow)"},
            "wait": {"type": "boolean", "default": True, "description": "wait for the run to finish"},
            "environment": {"type": "string", "minLength": 1, "default": ENVIRONMENT, "description": "deployment to run"},
        },
        "required": ["workflow"],
        "additionalProperties": False,
    },
    output_schema=_RUN_OUTPUT,
    handler=run_workflow,
    read_only=False,
    destructive=True,  # what a workflow does depends on its nodes (mail, HTTP, ...)
    idempotent=False,
    open_world=True,
)
