"""Platform tools over workflows, executions and datasets: each calls one selector or service and renders it."""

from apps.catalogue.selectors import input_schema, output_schema, production_deployment, tool_name
from apps.core.errors import ApplicationError, ValidationFailed
from apps.datasets.representation import dataset_data
from apps.datasets.selectors import dataset_list, dataset_query
from apps.mcp_bridge.results import Call, ToolResult, error_result, ok
from apps.nexus_sessions.representation import session_data
from apps.nexus_sessions.selectors import session_executions
from apps.runs.representation import execution_data
from apps.runs.selectors import run_get, run_list
from apps.runs.services import run_cancel
from apps.workflows.representation import workflow_data
from apps.workflows.selectors import deployments_by_workflow, workflow_get, workflow_list


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


HANDLERS = {
    "list_workflows": list_workflows,
    "describe_workflow": describe_workflow,
    "get_execution": get_execution,
    "list_executions": list_executions,
    "cancel_execution": cancel_execution,
    "session_info": session_info,
    "list_datasets": list_datasets,
    "query_dataset": query_dataset,
}
