"""Platform tools over workflows, executions and datasets: each calls one selector or service and renders it."""

from apps.core.errors import ApplicationError, ValidationFailed
from apps.datasets.query import FUNCTIONS, MAX_LIMIT, OPS
from apps.datasets.representation import dataset_data
from apps.datasets.selectors import dataset_list, dataset_query
from apps.mcp_bridge.results import Call, ToolResult, ToolSpec, error_result, ok
from apps.mcp_bridge.workflow_tools import input_schema, output_schema, production_deployment, tool_name
from apps.nexus_sessions.representation import session_data
from apps.nexus_sessions.selectors import session_executions
from apps.runs.models import Channel, Status
from apps.runs.representation import execution_data
from apps.runs.selectors import run_get, run_list
from apps.runs.services import run_cancel
from apps.workflows.representation import workflow_data
from apps.workflows.selectors import deployments_by_workflow, workflow_get, workflow_list

_OBJECT = {"type": "object"}
_NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}
_EXECUTION_ID = {"type": "string", "minLength": 1, "description": "execution id (run_…)"}


def _guarded(handler):
    """Domain errors become tool errors carrying the same detail, code and fields as the REST API's answer."""

    def call(call: Call) -> ToolResult:
        try:
            return handler(call)
        except ApplicationError as error:
            return error_result(error)

    call.__name__ = handler.__name__
    return call


# ------------------------------------------------------------------------------------------- workflows


def _workflow_entry(workflow, deployments, *, with_definition: bool = False) -> dict:
    data = workflow_data(workflow, deployments=deployments, with_definition=with_definition)
    deployed = production_deployment(deployments)
    data["tool"] = tool_name(workflow.slug) if deployed is not None else None
    return data


@_guarded
def list_workflows(call: Call) -> ToolResult:
    workflows = workflow_list(principal=call.principal, tenant_id=call.tenant.pk)
    deployments = deployments_by_workflow([w.id for w in workflows])
    entries = [_workflow_entry(w, deployments[w.id]) for w in workflows]
    if call.arguments.get("deployed_only"):
        entries = [e for e in entries if e["tool"] is not None]
    return ok({"count": len(entries), "workflows": entries})


@_guarded
def describe_workflow(call: Call) -> ToolResult:
    workflow = workflow_get(principal=call.principal, tenant_id=call.tenant.pk, ref=call.arguments["workflow"])
    deployments = deployments_by_workflow([workflow.id])[workflow.id]
    data = _workflow_entry(workflow, deployments, with_definition=True)
    deployed = production_deployment(deployments)
    if deployed is not None:
        # What its tool takes and gives: the deployed version's, which may differ from the latest.
        data["tool_input_schema"] = input_schema(deployed.version.definition)
        data["tool_output_schema"] = output_schema(deployed.version.definition)
    return ok(data)


# ------------------------------------------------------------------------------------------ executions


@_guarded
def get_execution(call: Call) -> ToolResult:
    execution = run_get(principal=call.principal, tenant_id=call.tenant.pk, run_id=call.arguments["execution_id"])
    return ok(execution_data(execution), run_id=execution.id)


@_guarded
def list_executions(call: Call) -> ToolResult:
    args = call.arguments
    count, executions = run_list(
        principal=call.principal,
        tenant_id=call.tenant.pk,
        workflow=args.get("workflow"),
        session=args.get("session"),
        channel=args.get("channel"),
        status=args.get("status"),
        limit=args.get("limit", 20),
        offset=args.get("offset", 0),
    )
    return ok({"count": count, "executions": [execution_data(e, with_steps=False) for e in executions]})


@_guarded
def cancel_execution(call: Call) -> ToolResult:
    execution = run_cancel(principal=call.principal, tenant_id=call.tenant.pk, run_id=call.arguments["execution_id"])
    return ok(execution_data(execution, with_steps=False), run_id=execution.id)


# -------------------------------------------------------------------------------------------- sessions


@_guarded
def session_info(call: Call) -> ToolResult:
    """The session named, or the one this client is bound to by `X-Nexus-Session`, with its recent runs."""
    session_id = call.arguments.get("session") or call.session_id
    if not session_id:
        raise ValidationFailed(
            "no session: pass `session` or send the X-Nexus-Session header",
            code="invalid_arguments",
            fields={"session": "required when the client is not bound to a session"},
        )
    session, executions = session_executions(principal=call.principal, tenant_id=call.tenant.pk, session_id=session_id)
    limit = call.arguments.get("limit", 20)
    data = session_data(session)
    data["bound"] = session.id == call.session_id
    data["executions"] = [execution_data(e, with_steps=False) for e in executions[:limit]]
    return ok(data)


# -------------------------------------------------------------------------------------------- datasets


@_guarded
def list_datasets(call: Call) -> ToolResult:
    datasets = dataset_list(principal=call.principal, tenant_id=call.tenant.pk)
    return ok({"count": len(datasets), "datasets": [dataset_data(d) for d in datasets]})


@_guarded
def query_dataset(call: Call) -> ToolResult:
    args = call.arguments
    rows = dataset_query(
        principal=call.principal,
        tenant_id=call.tenant.pk,
        dataset=args["dataset"],
        filters=args.get("filters", []),
        group_by=args.get("group_by", []),
        aggregates=args.get("aggregates", []),
        order_by=args.get("order_by", []),
        limit=args.get("limit", 1000),
    )
    return ok({"count": len(rows), "rows": rows})


TOOLS = [
    ToolSpec(
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
        handler=list_workflows,
    ),
    ToolSpec(
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
        handler=describe_workflow,
    ),
    ToolSpec(
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
        handler=get_execution,
    ),
    ToolSpec(
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
        handler=list_executions,
    ),
    ToolSpec(
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
        handler=cancel_execution,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
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
        handler=session_info,
    ),
    ToolSpec(
        name="list_datasets",
        title="List datasets",
        description="List this tenant's datasets (tables workflows and query_dataset read) with their columns and sizes.",
        input_schema=_NO_ARGUMENTS,
        output_schema={
            "type": "object",
            "properties": {"count": {"type": "integer"}, "datasets": {"type": "array", "items": _OBJECT}},
            "required": ["count", "datasets"],
        },
        handler=list_datasets,
    ),
    ToolSpec(
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
        handler=query_dataset,
    ),
]
