"""`nexus tenant list|show`."""

from apps.cli.commands import leaf
from apps.cli.context import table
from apps.core.errors import PermissionDenied
from apps.tenants.selectors import tenant_get, tenant_list


def register(verbs) -> None:
    group = verbs.add_parser("tenant", help="inspect tenants")
    sub = group.add_subparsers(dest="tenant_verb", metavar="VERB", required=True)
    leaf(sub, "list", list_tenants, "list tenants (platform admins)")
    leaf(sub, "show", show_tenant, "show one tenant").add_argument("slug")


def _tenant_data(tenant) -> dict:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan,
        "schema": tenant.schema_name,
        "active": tenant.is_active,
        "created_at": tenant.created_at.isoformat().replace("+00:00", "Z"),
    }


def _require_platform_admin(ctx) -> None:
    if not ctx.principal.is_platform_admin:
        raise PermissionDenied("only platform admins may list tenants")


def list_tenants(ctx, options) -> None:
    _require_platform_admin(ctx)
    data = {"tenants": [_tenant_data(t) for t in tenant_list()]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                "tenants",
                ["slug", "name", "plan", "schema", "created"],
                [[t["slug"], t["name"], t["plan"], t["schema"], t["created_at"]] for t in d["tenants"]],
            )
        ),
    )


def show_tenant(ctx, options) -> None:
    _require_platform_admin(ctx)
    ctx.emit(_tenant_data(tenant_get(slug=options["slug"])))
