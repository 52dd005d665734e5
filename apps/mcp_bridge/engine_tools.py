"""Tools that run one engine node on the caller's data: `metrics`, `chart` (artifacts port), `email` (mail port).

Each builds a one-node definition, compiles it with the platform's engine limits and executes it in this
process, so the node's own validation, limits and error codes apply exactly as inside a workflow. These are
not workflow runs: nothing is recorded as an execution (the call itself is audited by server.py).
"""

import json
import time
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connections

from apps.accounts.access import require
from apps.artifacts.ports import ArtifactsPort
from apps.core.errors import ApplicationError
from apps.engine.library.metrics import METRICS
from apps.mail.ports import MailPort
from apps.mcp_bridge.results import Call, ToolResult, ToolSpec, error_result, failure, ok
from apps.workflows.compiled import compile_definition

_NODE = "node"
_CONFIG_FIELD = "definition.nodes[0].config."
_ROWS = {"type": "array", "items": {"type": "object"}, "description": "the rows: a list of objects"}
_MAX_RECIPIENTS = 50


@lru_cache(maxsize=256)
def _compiled(node_type: str, config_json: str):
    """Compiled one-node definitions, cached by their config: repeated calls skip validation and compilation."""
    return compile_definition(
        {
            "inputs": {"type": "object"},
            "nodes": [{"id": _NODE, "type": node_type, "config": json.loads(config_json)}],
            "edges": [],
            "outputs": {"result": f"nodes.{_NODE}"},
        }
    )


@contextmanager
def _worker_connection():
    """A node the engine hands to one of its own threads gets a connection there: close it when the node ends."""
    try:
        yield
    finally:
        connections.close_all()


def _run_node(node_type: str, config: dict, inputs: dict, *, ports: dict | None = None) -> ToolResult:
    try:
        compiled = _compiled(node_type, json.dumps(config, sort_keys=True))
    except ApplicationError as error:
        # Name the argument, not the generated definition's path.
        error.fields = {name.replace(_CONFIG_FIELD, ""): reason for name, reason in error.fields.items()}
        return error_result(error)
    result = compiled.execute(
        inputs,
        deadline=time.monotonic() + settings.NEXUS_WAIT_TIMEOUT_S,
        ports=ports or {},
        worker_scope=_worker_connection,
    )
    if result.status != "completed":
        error = result.error or {}
        return failure(error.get("message") or result.status, code=error.get("code") or result.status)
    output = result.outputs.get("result")
    return ok(output if isinstance(output, dict) else {"result": output})


def compute_metrics(call: Call) -> ToolResult:
    # Arithmetic over rows the caller already holds: as much as reading a dataset, no more.
    try:
        require(call.principal, "dataset.read", tenant_id=call.tenant.pk)
    except ApplicationError as error:
        return error_result(error)
    args = call.arguments
    config: dict[str, Any] = {"rows": "inputs.rows"}
    for key in ("field", "metrics", "group_by"):
        if key in args:
            config[key] = args[key]
    return _run_node("metrics", config, {"rows": args["rows"]})


def render_chart(call: Call) -> ToolResult:
    try:
        require(call.principal, "workflow.execute", tenant_id=call.tenant.pk)  # it stores an artifact, as a run would
    except ApplicationError as error:
        return error_result(error)
    args = call.arguments
    fmt = args.get("format", "png")
    # Title and name are the caller's text, not templates: pass them as inputs and render them verbatim.
    config: dict[str, Any] = {"rows": "inputs.rows", "kind": args["kind"], "x": args["x"], "y": args["y"], "format": fmt}
    config["name"] = "{{ inputs.name }}"
    if "title" in args:
        config["title"] = "{{ inputs.title }}"
    for key in ("width", "height"):
        if key in args:
            config[key] = args[key]
    inputs = {"rows": args["rows"], "title": args.get("title", ""), "name": args.get("name") or f"chart.{fmt}"}
    result = _run_node("chart", config, inputs, ports={"artifacts": ArtifactsPort()})
    if result.is_error:
        return result
    artifact = result.structured
    return ok(
        {
            "artifact_id": artifact["id"],
            "artifact": artifact,
            "download_path": f"/api/v1/artifacts/{artifact['id']}/download/",
        }
    )


def send_email_report(call: Call) -> ToolResult:
    args = call.arguments
    try:
        require(call.principal, "workflow.execute", tenant_id=call.tenant.pk)  # it sends mail, as a run would
        if args.get("artifact_ids"):
            require(call.principal, "artifact.read", tenant_id=call.tenant.pk)
    except ApplicationError as error:
        return error_result(error)
    to = [args["to"]] if isinstance(args["to"], str) else list(args["to"])
    cc = list(args.get("cc") or [])
    config: dict[str, Any] = {
        "to": [f"{{{{ inputs.to[{i}] }}}}" for i in range(len(to))],
        "subject": "{{ inputs.subject }}",
        "body": "{{ inputs.body }}",
    }
    if cc:
        config["cc"] = [f"{{{{ inputs.cc[{i}] }}}}" for i in range(len(cc))]
    if args.get("artifact_ids"):
        config["attachments"] = ["inputs.artifact_ids"]
    artifacts = ArtifactsPort()
    mail = MailPort(artifacts=artifacts, principal=call.principal, source="send_email_report")
    inputs = {"to": to, "cc": cc, "subject": args["subject"], "body": args["body"], "artifact_ids": args.get("artifact_ids", [])}
    return _run_node("email", config, inputs, ports={"artifacts": artifacts, "mail": mail})


_ADDRESS = {"type": "string", "minLength": 3, "maxLength": 254}

TOOLS = [
    ToolSpec(
        name="compute_metrics",
        title="Compute metrics",
        description="Summary statistics of a numeric field over rows (e.g. query_dataset's rows), overall or per "
        f"group: {', '.join(METRICS)}. Runs the engine's `metrics` node; missing and null values are skipped, "
        "percentiles interpolate linearly (numpy's default), stddev is the population one.",
        input_schema={
            "type": "object",
            "properties": {
                "rows": _ROWS,
                "field": {"type": "string", "minLength": 1, "description": "the numeric field (optional for count only)"},
                "metrics": {
                    "type": "array",
                    "minItems": 1,
                    "uniqueItems": True,
                    "items": {"enum": list(METRICS)},
                    "description": "default: all of them with field, [count] without",
                },
                "group_by": {"type": "string", "minLength": 1, "description": "field to group rows by"},
            },
            "required": ["rows"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "description": 'the metrics, e.g. {"count": 3, "sum": 35, "mean": 11.67}; with group_by {"groups": {...}}',
        },
        handler=compute_metrics,
    ),
    ToolSpec(
        name="render_chart",
        title="Render a chart",
        description="Render rows as a bar, line, pie or scatter chart (PNG or SVG) with the engine's `chart` node and "
        "store it as an artifact of this tenant. Returns the artifact id (attach it with send_email_report) and the "
        "REST path to download it.",
        input_schema={
            "type": "object",
            "properties": {
                "rows": _ROWS,
                "kind": {"enum": ["bar", "line", "pie", "scatter"]},
                "x": {"type": "string", "minLength": 1, "description": "field of the x value or category label"},
                "y": {
                    "description": "field of the numeric y value, or a list of fields for several series (one for pie)",
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {"type": "array", "minItems": 1, "maxItems": 10, "uniqueItems": True, "items": {"type": "string"}},
                    ],
                },
                "title": {"type": "string", "maxLength": 500},
                "format": {"enum": ["png", "svg"], "default": "png"},
                "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "file name (default chart.<format>)"},
                "width": {"type": "integer", "minimum": 100, "maximum": 4000, "default": 800},
                "height": {"type": "integer", "minimum": 100, "maximum": 4000, "default": 450},
            },
            "required": ["rows", "kind", "x", "y"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "artifact_id": {"type": "string"},
                "artifact": {"type": "object"},
                "download_path": {"type": "string"},
            },
            "required": ["artifact_id", "artifact", "download_path"],
        },
        handler=render_chart,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        name="send_email_report",
        title="Send an email report",
        description="Send an email (plain-text body) with the engine's `email` node, optionally attaching artifacts of "
        "this tenant such as charts from render_chart.",
        input_schema={
            "type": "object",
            "properties": {
                "to": {
                    "description": "recipient address, or a list of them",
                    "oneOf": [_ADDRESS, {"type": "array", "minItems": 1, "maxItems": _MAX_RECIPIENTS, "items": _ADDRESS}],
                },
                "cc": {"type": "array", "maxItems": _MAX_RECIPIENTS, "items": _ADDRESS},
                "subject": {"type": "string", "minLength": 1, "maxLength": 998},
                "body": {"type": "string"},
                "artifact_ids": {
                    "type": "array",
                    "maxItems": 20,
                    "items": {"type": "string", "pattern": "^art_"},
                    "description": "artifacts to attach (art_…)",
                },
            },
            "required": ["to", "subject", "body"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"message_id": {"type": "string"}, "accepted": {"type": "array", "items": {"type": "string"}}},
            "required": ["message_id", "accepted"],
        },
        handler=send_email_report,
        read_only=False,
        destructive=False,
        idempotent=False,
        open_world=True,
    ),
]
