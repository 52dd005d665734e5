"""The `subworkflow` node: run another deployed workflow of the tenant through the `workflows` service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import NodeError
from ..expressions import Expression
from ..registry import CompileContext, NodeType, RunContext
from .common import call_port, expect_object

SUCCESS = ("completed", "completed_with_recovery")


@dataclass(frozen=True, slots=True)
class _SubworkflowConfig:
    workflow: str
    inputs: tuple[tuple[str, Expression], ...]
    environment: str


def _compile(config: dict[str, Any], ctx: CompileContext) -> _SubworkflowConfig | None:
    inputs = [(key, ctx.expression(f"inputs.{key}", source)) for key, source in config.get("inputs", {}).items()]
    if ctx.errors:
        return None
    return _SubworkflowConfig(config["workflow"], tuple(inputs), config.get("environment", "production"))  # type: ignore[arg-type]


def _run(config: _SubworkflowConfig, ctx: RunContext) -> dict[str, Any]:
    depth = ctx.depth + 1
    limit = ctx.limits.max_subworkflow_depth
    if depth > limit:
        # Checked before calling anything: a workflow that calls itself stops here.
        raise NodeError(
            "depth_exceeded",
            f"calling {config.workflow!r} would nest subworkflows {depth} deep; the limit is {limit}",
            retryable=False,
        )
    inputs = {key: expression.search(ctx.data) for key, expression in config.inputs}
    child = call_port(
        ctx,
        "workflows",
        "run",
        workflow=config.workflow,
        inputs=inputs,
        environment=config.environment,
        depth=depth,
        deadline=ctx.deadline,  # the child has what is left of this node's (and so the parent run's) time
        threads=ctx.threads,  # and shares the run tree's worker threads rather than starting its own
    )
    child = expect_object(child, "workflows", "run")
    status = child.get("status")
    if status not in SUCCESS:
        error = child.get("error")
        reason = error.get("message") if isinstance(error, dict) else error
        detail = f": {reason}" if reason else ""
        raise NodeError(
            "subworkflow_failed",
            f"subworkflow {config.workflow!r} ({child.get('execution_id')}) ended {status}{detail}",
        )
    return {"execution_id": child.get("execution_id"), "status": status, "outputs": child.get("outputs") or {}}


SUBWORKFLOW_NODE = NodeType(
    name="subworkflow",
    description=(
        "Run another workflow deployed in the same tenant as a child of this run, wait for it, and output its "
        "outputs. Nesting is limited by `max_subworkflow_depth` (3 by default), which also stops recursion."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["workflow"],
        "properties": {
            "workflow": {
                "type": "string",
                "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$",
                "description": "Slug (or id) of the workflow to run.",
            },
            "inputs": {
                "type": "object",
                "maxProperties": 100,
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "The child's inputs: each key's value is a JMESPath expression.",
            },
            "environment": {
                "type": "string",
                "pattern": "^[a-z][a-z0-9_-]{0,31}$",
                "default": "production",
                "description": "Which deployment of the child workflow to run.",
            },
        },
    },
    compile=_compile,
    run=_run,
    pure=False,
    output='`{"execution_id": "run_…", "status": "completed" | "completed_with_recovery", "outputs": {...}}`.',
    errors={
        "depth_exceeded": "this run is already at `max_subworkflow_depth`",
        "subworkflow_failed": "the child run ended failed, timed_out or cancelled (the message carries its error)",
        "port_unavailable": "the run has no `workflows` service",
        "port_error": "the workflows service failed",
    },
    example={
        "id": "enrich",
        "type": "subworkflow",
        "config": {"workflow": "enrich-customer", "inputs": {"customer_id": "inputs.id"}},
    },
)
