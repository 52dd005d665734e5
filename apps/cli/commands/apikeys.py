"""`nexus apikey create|list|revoke`."""

from rich.panel import Panel

from apps.accounts.models import Role
from apps.accounts.selectors import apikey_list
from apps.accounts.services import apikey_create, apikey_revoke
from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.core.dates import iso_utc


def register(verbs) -> None:
    group = verbs.add_parser("apikey", help="manage API keys")
    sub = group.add_subparsers(dest="apikey_verb", metavar="VERB", required=True)
    create = leaf(sub, "create", create_key, "create an API key for the tenant (shown once)")
    create.add_argument("--role", default=Role.DEVELOPER, help=f"one of {', '.join(Role.values)} (default developer)")
    create.add_argument("--name", default="")
    leaf(sub, "list", list_keys, "list the tenant's API keys (never the secrets)")
    leaf(sub, "revoke", revoke_key, "revoke an API key by id or prefix").add_argument("key")


def _key_data(key) -> dict:
    return {
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "role": key.role,
        "created_by": key.created_by,
        "created_at": iso_utc(key.created_at),
        "revoked_at": iso_utc(key.revoked_at),
    }


def create_key(ctx, options) -> None:
    key, raw = apikey_create(principal=ctx.principal, tenant=ctx.tenant, role=options["role"], name=options["name"])
    data = {"id": key.id, "key": raw, "role": key.role, "tenant": ctx.tenant.slug, "prefix": key.prefix}
    ctx.emit(
        data,
        lambda out, d: out.print(
            Panel(
                f"{d['key']}\n\nrole {d['role']} in tenant {d['tenant']}. Store it now: it is not shown again.",
                title=f"API key {d['id']}",
            )
        ),
    )


def list_keys(ctx, options) -> None:
    data = {"keys": [_key_data(k) for k in apikey_list(principal=ctx.principal, tenant=ctx.tenant)]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"API keys of {ctx.tenant_slug}",
                ["id", "prefix", "role", "name", "created", "revoked"],
                [[k["id"], k["prefix"], k["role"], k["name"], k["created_at"], k["revoked_at"] or "-"] for k in d["keys"]],
            )
        ),
    )


def revoke_key(ctx, options) -> None:
    key = apikey_revoke(principal=ctx.principal, tenant=ctx.tenant, key_id=options["key"])
    ctx.emit(_key_data(key), lambda out, d: out.print(f"revoked {d['id']} ({d['prefix']})"))
