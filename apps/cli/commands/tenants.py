"""`nexus tenant list|show|create|update|suspend|resume|delete`."""

import argparse

from rich.panel import Panel

from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.quotas.selectors import quota_usage, quota_usage_all_tenants
from apps.tenants.models import Isolation
from apps.tenants.representation import tenant_data
from apps.tenants.selectors import tenant_list_all_tenants, tenant_show
from apps.tenants.services import tenant_create, tenant_delete, tenant_resume, tenant_suspend, tenant_update


def register(verbs) -> None:
    group = verbs.add_parser("tenant", help="administer tenants (platform admins)")
    sub = group.add_subparsers(dest="tenant_verb", metavar="VERB", required=True)
    leaf(sub, "list", list_tenants, "list tenants (platform admins)")
    leaf(sub, "show", show_tenant, "show one tenant").add_argument("slug")
    create = leaf(sub, "create", create_tenant, "create a tenant and its schema (platform admins)")
    create.add_argument("slug")
    create.add_argument("--name", default="")
    create.add_argument("--plan", default="standard")
    create.add_argument("--quota-workflows", dest="quota_workflows", type=int, default=None, metavar="N")
    create.add_argument("--quota-executions", dest="quota_executions", type=int, default=None, metavar="N")
    create.add_argument("--isolation", choices=Isolation.values, default=Isolation.STRICT)
    create.add_argument("--max-concurrent-runs", dest="max_concurrent_runs", type=int, default=None, metavar="N")
    create.add_argument("--quota-mail-per-day", dest="quota_mail_per_day", type=int, default=None, metavar="N")
    # Options left out stay as they are (SUPPRESS keeps them out of the parsed options: None means "unlimited").
    update = leaf(sub, "update", update_tenant, "change a tenant's name, plan, quotas or isolation (platform admins)")
    update.add_argument("slug")
    unset = argparse.SUPPRESS
    update.add_argument("--name", default=unset)
    update.add_argument("--plan", default=unset)
    limit_help = "a number, or 'unlimited'"
    update.add_argument("--quota-workflows", dest="quota_workflows", type=_limit, default=unset, metavar="N", help=limit_help)
    update.add_argument("--quota-executions", dest="quota_executions", type=_limit, default=unset, metavar="N", help=limit_help)
    update.add_argument("--isolation", choices=Isolation.values, default=unset)
    update.add_argument(
        "--max-concurrent-runs",
        dest="max_concurrent_runs",
        type=_limit,
        default=unset,
        metavar="N",
        help="a number, or 'default'",
    )
    update.add_argument(
        "--quota-mail-per-day", dest="quota_mail_per_day", type=_limit, default=unset, metavar="N", help="a number, or 'default'"
    )
    leaf(sub, "suspend", suspend_tenant, "suspend a tenant: its credentials stop working").add_argument("slug")
    leaf(sub, "resume", resume_tenant, "resume a suspended tenant").add_argument("slug")
    delete = leaf(sub, "delete", delete_tenant, "drop a tenant's schema and everything it owns")
    delete.add_argument("slug")
    delete.add_argument("--confirm", default="", metavar="SLUG", help="repeat the slug to confirm")


def _quota(value) -> str:
    return "unlimited" if value is None else str(value)


_UPDATABLE = ("name", "plan", "quota_workflows", "quota_executions", "isolation", "max_concurrent_runs", "quota_mail_per_day")


def _limit(value: str):
    """A whole number, or None for 'unlimited' / 'default' (`tenant update`)."""
    if value in ("unlimited", "default", "none", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number, 'unlimited' or 'default'") from None


def _render_one(out, data: dict) -> None:
    usage = data.get("usage")
    used_workflows = f"{usage['workflows']} of " if usage else ""
    used_executions = f"{usage['executions_this_period']} in {usage['period']} of " if usage else ""
    concurrency = data["max_concurrent_runs"] or "default"
    lines = [
        f"name        {data['name']}",
        f"plan        {data['plan']}",
        f"workflows   {used_workflows}{_quota(data['quotas']['workflows'])}",
        f"executions  {used_executions}{_quota(data['quotas']['executions'])}",
        f"mail a day  {'default' if data['quotas']['mail_per_day'] is None else data['quotas']['mail_per_day']}",
        f"isolation   {data['isolation']}" + (f" (at most {concurrency} runs at once)" if data["isolation"] == "strict" else ""),
        f"active      {'yes' if data['active'] else 'no (suspended)'}",
        f"schema      {data['schema']}",
        f"created     {data['created_at']}",
    ]
    out.print(Panel("\n".join(lines), title=f"tenant {data['slug']}", title_align="left"))


def list_tenants(ctx, options) -> None:
    tenants = tenant_list_all_tenants(principal=ctx.principal)
    usage = quota_usage_all_tenants(tenants)
    data = {"tenants": [tenant_data(t, usage=usage[t.pk]) for t in tenants]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                "tenants",
                ["slug", "name", "plan", "workflows", "executions", "isolation", "active"],
                [
                    [
                        t["slug"],
                        t["name"],
                        t["plan"],
                        _quota(t["quotas"]["workflows"]),
                        _quota(t["quotas"]["executions"]),
                        t["isolation"],
                        "yes" if t["active"] else "suspended",
                    ]
                    for t in d["tenants"]
                ],
            )
        ),
    )


def show_tenant(ctx, options) -> None:
    _emit(ctx, tenant_show(principal=ctx.principal, slug=options["slug"]))


def create_tenant(ctx, options) -> None:
    tenant = tenant_create(
        principal=ctx.principal,
        slug=options["slug"],
        name=options["name"],
        plan=options["plan"],
        quota_workflows=options["quota_workflows"],
        quota_executions=options["quota_executions"],
        isolation=options["isolation"],
        max_concurrent_runs=options["max_concurrent_runs"],
        quota_mail_per_day=options["quota_mail_per_day"],
    )
    _emit(ctx, tenant)


def update_tenant(ctx, options) -> None:
    given = {name: options[name] for name in _UPDATABLE if name in options}
    _emit(ctx, tenant_update(principal=ctx.principal, slug=options["slug"], **given))


def suspend_tenant(ctx, options) -> None:
    _emit(ctx, tenant_suspend(principal=ctx.principal, slug=options["slug"]))


def resume_tenant(ctx, options) -> None:
    _emit(ctx, tenant_resume(principal=ctx.principal, slug=options["slug"]))


def _emit(ctx, tenant) -> None:
    ctx.emit(tenant_data(tenant, usage=quota_usage(tenant)), _render_one)


def delete_tenant(ctx, options) -> None:
    slug = options["slug"]
    tenant_delete(principal=ctx.principal, slug=slug, confirm=options["confirm"])
    ctx.emit({"deleted": slug}, lambda out, d: out.print(f"deleted tenant {d['deleted']} and its schema"))
