"""`nexus tenant list|show|create|suspend|resume|delete`."""

from rich.panel import Panel

from apps.cli.commands import leaf
from apps.cli.context import table
from apps.tenants.models import Isolation
from apps.tenants.representation import tenant_data
from apps.tenants.selectors import tenant_list_all_tenants, tenant_show
from apps.tenants.services import tenant_create, tenant_delete, tenant_resume, tenant_suspend


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
    leaf(sub, "suspend", suspend_tenant, "suspend a tenant: its credentials stop working").add_argument("slug")
    leaf(sub, "resume", resume_tenant, "resume a suspended tenant").add_argument("slug")
    delete = leaf(sub, "delete", delete_tenant, "drop a tenant's schema and everything it owns")
    delete.add_argument("slug")
    delete.add_argument("--confirm", default="", metavar="SLUG", help="repeat the slug to confirm")


def _quota(value) -> str:
    return "unlimited" if value is None else str(value)


def _render_one(out, data: dict) -> None:
    lines = [
        f"name        {data['name']}",
        f"plan        {data['plan']}",
        f"workflows   {_quota(data['quotas']['workflows'])}",
        f"executions  {_quota(data['quotas']['executions'])}",
        f"isolation   {data['isolation']}",
        f"active      {'yes' if data['active'] else 'no (suspended)'}",
        f"schema      {data['schema']}",
        f"created     {data['created_at']}",
    ]
    out.print(Panel("\n".join(lines), title=f"tenant {data['slug']}", title_align="left"))


def list_tenants(ctx, options) -> None:
    data = {"tenants": [tenant_data(t) for t in tenant_list_all_tenants(principal=ctx.principal)]}
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
    ctx.emit(tenant_data(tenant_show(principal=ctx.principal, slug=options["slug"])), _render_one)


def create_tenant(ctx, options) -> None:
    tenant = tenant_create(
        principal=ctx.principal,
        slug=options["slug"],
        name=options["name"],
        plan=options["plan"],
        quota_workflows=options["quota_workflows"],
        quota_executions=options["quota_executions"],
        isolation=options["isolation"],
    )
    ctx.emit(tenant_data(tenant), _render_one)


def suspend_tenant(ctx, options) -> None:
    ctx.emit(tenant_data(tenant_suspend(principal=ctx.principal, slug=options["slug"])), _render_one)


def resume_tenant(ctx, options) -> None:
    ctx.emit(tenant_data(tenant_resume(principal=ctx.principal, slug=options["slug"])), _render_one)


def delete_tenant(ctx, options) -> None:
    slug = options["slug"]
    tenant_delete(principal=ctx.principal, slug=slug, confirm=options["confirm"])
    ctx.emit({"deleted": slug}, lambda out, d: out.print(f"deleted tenant {d['deleted']} and its schema"))
