"""Tools over rows the caller holds: `compute_metrics`, `render_chart`, `send_email_report` (apps/reports).

These are not workflow runs: nothing is recorded as an execution (the call itself is audited by server.py;
the artifact stored and the message sent are audited by the services).
"""

from apps.core.errors import ApplicationError
from apps.mcp_bridge.results import Call, ToolResult, error_result, ok
from apps.reports.selectors import metrics_compute
from apps.reports.services import chart_render, report_email_send


def compute_metrics(call: Call) -> ToolResult:
    args = call.arguments
    try:
        computed = metrics_compute(
            principal=call.principal,
            tenant_id=call.tenant.pk,
            rows=args["rows"],
            field=args.get("field"),
            metrics=args.get("metrics"),
            group_by=args.get("group_by"),
        )
    except ApplicationError as error:
        return error_result(error)
    return ok(computed)


def render_chart(call: Call) -> ToolResult:
    args = call.arguments
    try:
        artifact = chart_render(
            principal=call.principal,
            tenant_id=call.tenant.pk,
            rows=args["rows"],
            kind=args["kind"],
            x=args["x"],
            y=args["y"],
            title=args.get("title"),
            format=args.get("format", "png"),
            name=args.get("name"),
            width=args.get("width"),
            height=args.get("height"),
        )
    except ApplicationError as error:
        return error_result(error)
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
        sent = report_email_send(
            principal=call.principal,
            tenant_id=call.tenant.pk,
            to=[args["to"]] if isinstance(args["to"], str) else args["to"],
            cc=args.get("cc") or [],
            subject=args["subject"],
            body=args["body"],
            artifact_ids=args.get("artifact_ids") or [],
        )
    except ApplicationError as error:
        return error_result(error)
    return ok(sent)


HANDLERS = {"compute_metrics": compute_metrics, "render_chart": render_chart, "send_email_report": send_email_report}
