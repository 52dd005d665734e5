"""`nexus test`, `nexus run`, `nexus history`, `nexus execution show|cancel`."""

import sys

from rich.panel import Panel

from apps.cli.context import parse_json_option, table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed
from apps.runs.models import Channel, Status
from apps.runs.representation import execution_data
from apps.runs.selectors import run_get, run_list
from apps.runs.services import run_cancel, run_start, run_suite


def register(verbs) -> None:
    test = leaf(verbs, "test", test_workflow, "run the latest version with --input, or its test cases with --suite")
    test.add_argument("workflow")
    test.add_argument("--input", default=None, help="inputs as a JSON object")
    test.add_argument("--suite", default=None, help="run the definition's test cases of this suite ('all' for every case)")

    run = leaf(verbs, "run", run_workflow, "run the deployed version")
    run.add_argument("workflow")
    run.add_argument("--input", default="{}", help="inputs as a JSON object")
    run.add_argument("--env", default="production")
    run.add_argument("--no-wait", action="store_true", help="return the run id at once")

    history = leaf(verbs, "history", show_history, "list recent executions, newest first")
    history.add_argument("--limit", type=int, default=20)
    history.add_argument("--workflow", default=None)
    history.add_argument("--channel", default=None)
    history.add_argument("--status", default=None)

    group = verbs.add_parser("execution", help="inspect or cancel an execution")
    sub = group.add_subparsers(dest="execution_verb", metavar="VERB", required=True)
    leaf(sub, "show", show_execution, "show an execution with its steps").add_argument("execution")
    leaf(sub, "cancel", cancel_execution, "cancel a queued or running execution").add_argument("execution")


def _render_run(out, d) -> None:
    colour = "green" if d["status"].startswith("completed") else "red"
    body = f"[{colour}]{d['status']}[/]  {d['id']}  ({d['duration_ms']} ms)\n"
    out.print(Panel(body, title=f"{d['workflow']} v{d['version']}"))
    if d.get("outputs") is not None:
        out.print_json(data=d["outputs"])
    if d.get("error"):
        out.print(f"[red]error:[/] {d['error']}")


def test_workflow(ctx, options) -> None:
    if options["suite"]:
        if options["input"] is not None:
            raise ValidationFailed("give --input or --suite, not both", fields={"suite": "conflicts with --input"})
        run_test_suite(ctx, options)
        return
    inputs = parse_json_option(options["input"] or "{}", name="input")
    execution = run_start(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        workflow_ref=options["workflow"],
        inputs=inputs,
        channel=Channel.CLI,
        environment=None,
    )
    data = execution_data(execution)
    if ctx.json:
        ctx.emit(
            data["outputs"]
            if data["outputs"] is not None
            else {"status": data["status"], "error": data["error"], "execution_id": data["id"]}
        )
    else:
        _render_run(ctx.out, data)
    if execution.status not in (Status.COMPLETED, Status.COMPLETED_WITH_RECOVERY):
        sys.stderr.write(f"error: run {execution.id} ended {execution.status}: {(execution.error or {}).get('message', '')}\n")
        sys.exit(1)


def run_test_suite(ctx, options) -> None:
    suite = None if options["suite"] == "all" else options["suite"]
    report = run_suite(
        principal=ctx.principal, tenant_id=ctx.tenant.pk, workflow_ref=options["workflow"], suite=suite, channel=Channel.CLI
    )

    def render(out, d):
        rows = [
            [
                c["name"],
                c["suite"],
                "[green]passed[/]" if c["status"] == "passed" else "[red]failed[/]",
                c["execution_id"],
                "; ".join(c["failures"]),
            ]
            for c in d["cases"]
        ]
        out.print(
            table(
                f"{d['workflow']} v{d['version']}: {d['passed']}/{d['total']} passed",
                ["case", "suite", "result", "run", "why"],
                rows,
            )
        )

    ctx.emit(report, render)
    if report["total"] == 0:
        sys.stderr.write(f"error: workflow has no test cases in suite '{options['suite']}'\n")
        sys.exit(2)
    if report["failed"]:
        sys.exit(1)


def run_workflow(ctx, options) -> None:
    inputs = parse_json_option(options["input"], name="input")
    execution = run_start(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        workflow_ref=options["workflow"],
        inputs=inputs,
        channel=Channel.CLI,
        environment=options["env"],
        wait=not options["no_wait"],
    )
    data = execution_data(execution)
    ctx.emit(
        {"execution_id": data["id"], "status": data["status"], "result": data["outputs"], "error": data["error"]},
        lambda out, _: _render_run(out, data),
    )
    if execution.status in (Status.FAILED, Status.TIMED_OUT, Status.CANCELLED):
        sys.exit(1)


def show_history(ctx, options) -> None:
    count, executions = run_list(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        workflow=options["workflow"],
        channel=options["channel"],
        status=options["status"],
        limit=options["limit"],
    )
    data = {"count": count, "executions": [execution_data(e, with_steps=False) for e in executions]}

    def render(out, d):
        rows = [
            [e["id"], e["workflow"], e["status"], e["channel"], e["actor"], e["duration_ms"], e["created_at"]]
            for e in d["executions"]
        ]
        out.print(
            table(
                f"executions in {ctx.tenant_slug} ({len(rows)} of {d['count']})",
                ["id", "workflow", "status", "channel", "actor", "ms", "created"],
                rows,
            )
        )

    ctx.emit(data, render)


def show_execution(ctx, options) -> None:
    ctx.emit(execution_data(run_get(principal=ctx.principal, tenant_id=ctx.tenant.pk, run_id=options["execution"])))


def cancel_execution(ctx, options) -> None:
    execution = run_cancel(principal=ctx.principal, tenant_id=ctx.tenant.pk, run_id=options["execution"])
    ctx.emit(
        execution_data(execution, with_steps=False), lambda out, d: out.print(f"{d['id']}: {d['status']} (cancel requested)")
    )
