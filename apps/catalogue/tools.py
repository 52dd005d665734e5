"""The platform tools an agent sees, as plain data: name, description, argument and result schemas, hints.

What a tool does is its door's business (apps/mcp_bridge serves them over MCP, `nexus mcp tools` lists them);
what there is to call, and how it is described, is decided here once, with the one tool per deployed workflow
(apps/catalogue/selectors.py).
"""

from dataclasses import dataclass
from typing import Any

from apps.datasets.query import FUNCTIONS, MAX_LIMIT, OPS
from apps.reports.selectors import METRIC_NAMES
from apps.runs.models import Channel, Status

# A workflow deployed to this environment is a tool named PREFIX + its slug.
PREFIX = "workflow_"
ENVIRONMENT = "production"


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: doors memoise what they make of each
class Tool:
    name: str
    title: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    read_only: bool = True
    destructive: bool = False
    idempotent: bool = True
    open_world: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The tool as MCP's tools/list shows it (camelCase keys, the hints as annotations)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "annotations": {
                "title": self.title,
                "readOnlyHint": self.read_only,
                "destructiveHint": self.destructive,
                "idempotentHint": self.idempotent,
                "openWorldHint": self.open_world,
            },
        }


_OBJECT = {"type": "object"}
_NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}
_EXECUTION_ID = {"type": "string", "minLength": 1, "description": "execution id (run_…)"}
_ROWS = {"type": "array", "items": {"type": "object"}, "description": "the rows: a list of objects"}
_MAX_RECIPIENTS = 50

_WORKFLOWS_RUNS_SESSIONS_DATASETS = [
    Tool(
        name="list_workflows",
        title="List workflows",
        description="List this tenant's workflows with their versions and deployments; `tool` names the tool that runs "
        "a workflow deployed to production.",
        input_schema={
            "type": "object",
            "properties": {"deployed_only": {"type": "boolean", "default": False, "description": "only workflows with a tool"}},
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "workflows": {"type": "array", "items": _OBJECT}},
            "required": ["count", "workflows"],
        },
    ),
    Tool(
        name="describe_workflow",
        title="Describe a workflow",
        description="Show one workflow by id (wf_…) or slug: its definition (input JSON Schema, nodes, edges, outputs), "
        "its deployments, and the input and output schemas of its tool when deployed.",
        input_schema={
            "type": "object",
            "properties": {"workflow": {"type": "string", "minLength": 1, "description": "workflow id (wf_…) or slug"}},
            "required": ["workflow"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"id": {"type": "string"}, "slug": {"type": "string"}, "definition": _OBJECT},
            "required": ["id", "slug"],
        },
    ),
    Tool(
        name="get_execution",
        title="Get an execution",
        description="Show one execution (run) with its status, inputs, outputs, error, recovery and per-node steps.",
        input_schema={
            "type": "object",
            "properties": {"execution_id": _EXECUTION_ID},
            "required": ["execution_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": list(Status.values)}},
            "required": ["id", "status"],
        },
    ),
    Tool(
        name="list_executions",
        title="List executions",
        description="List this tenant's executions, newest first, optionally filtered by workflow, status, channel or "
        "session (steps left out: use get_execution).",
        input_schema={
            "type": "object",
            "properties": {
                "workflow": {"type": "string", "minLength": 1, "description": "workflow id (wf_…) or slug"},
                "status": {"type": "string", "enum": list(Status.values)},
                "channel": {"type": "string", "enum": list(Channel.values)},
                "session": {"type": "string", "minLength": 1, "description": "session id (ses_…)"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                "offset": {"type": "integer", "minimum": 0, "default": 0},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "executions": {"type": "array", "items": _OBJECT}},
            "required": ["count", "executions"],
        },
    ),
    Tool(
        name="cancel_execution",
        title="Cancel an execution",
        description="Cancel a queued or running execution. A finished one cannot be cancelled (an error says so).",
        input_schema={
            "type": "object",
            "properties": {"execution_id": _EXECUTION_ID},
            "required": ["execution_id"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": list(Status.values)}},
            "required": ["id", "status"],
        },
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    Tool(
        name="session_info",
        title="Session info",
        description="Show a Nexus session (the one this client is bound to with X-Nexus-Session, or the one named): its "
        "user, metadata, expiry and its most recent runs with their channel (api, cli, mcp, …).",
        input_schema={
            "type": "object",
            "properties": {
                "session": {"type": "string", "minLength": 1, "description": "session id (ses_…); default: the bound one"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "user": {"type": "string"},
                "metadata": _OBJECT,
                "bound": {"type": "boolean"},
                "executions": {"type": "array", "items": _OBJECT},
            },
            "required": ["id", "user", "metadata", "bound", "executions"],
        },
    ),
    Tool(
        name="list_datasets",
        title="List datasets",
        description="List this tenant's datasets (tables workflows and query_dataset read) with their columns and sizes.",
        input_schema=_NO_ARGUMENTS,
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "datasets": {"type": "array", "items": _OBJECT}},
            "required": ["count", "datasets"],
        },
    ),
    Tool(
        name="query_dataset",
        title="Query a dataset",
        description="Filter, group, aggregate and order a dataset's rows (read-only). Without group_by and aggregates "
        "the rows come back whole; with them, one row per group with its group_by columns and one column per "
        "aggregate ('as' names it).",
        input_schema={
            "type": "object",
            "properties": {
                "dataset": {"type": "string", "minLength": 1, "description": "dataset name or id (ds_…)"},
                "filters": {
                    "type": "array",
                    "items": _OBJECT,
                    "description": f'all must hold: [{{"field", "op": {"|".join(OPS)}, "value"}}]',
                },
                "group_by": {"type": "array", "items": {"type": "string"}, "description": "column names"},
                "aggregates": {
                    "type": "array",
                    "items": _OBJECT,
                    "description": f'[{{"fn": {"|".join(FUNCTIONS)}, "field" (not for count), "as"}}]',
                },
                "order_by": {
                    "type": "array",
                    "items": {"anyOf": [{"type": "object"}, {"type": "string"}]},
                    "description": '[{"field", "desc": false}] or column names',
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 1000},
            },
            "required": ["dataset"],
            "additionalProperties": False,
        },
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "rows": {"type": "array", "items": _OBJECT}},
            "required": ["count", "rows"],
        },
    ),
]

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

RUN_WORKFLOW = Tool(
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
    read_only=False,
    destructive=True,  # what a workflow does depends on its nodes (mail, HTTP, ...)
    idempotent=False,
    open_world=True,
)

_ADDRESS = {"type": "string", "minLength": 3, "maxLength": 254}

_REPORTS = [
    Tool(
        name="compute_metrics",
        title="Compute metrics",
        description="Summary statistics of a numeric field over rows (e.g. query_dataset's rows), overall or per "
        f"group: {', '.join(METRIC_NAMES)}. Runs the engine's `metrics` node; missing and null values are skipped, "
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
                    "items": {"enum": list(METRIC_NAMES)},
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
    ),
    Tool(
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
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    Tool(
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
            "properties": {
                "message_id": {"type": "string"},
                "accepted": {"type": "array", "items": {"type": "string"}},
                "attachments": {"type": "integer", "minimum": 0},
                "delivered_to": {
                    "type": "string",
                    "description": "`local outbox` when no mail server is configured (read it with GET /api/v1/mail/), "
                    "else the server (smtp://host:port)",
                },
                "mail_id": {"type": "string", "description": "the message in the tenant's outbox (msg_…)"},
            },
            "required": ["message_id", "accepted", "attachments", "delivered_to", "mail_id"],
        },
        read_only=False,
        destructive=False,
        idempotent=False,
        open_world=True,
    ),
]

PLATFORM_TOOLS: dict[str, Tool] = {tool.name: tool for tool in [*_WORKFLOWS_RUNS_SESSIONS_DATASETS, RUN_WORKFLOW, *_REPORTS]}
