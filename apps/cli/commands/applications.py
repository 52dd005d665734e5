"""`nexus app register|list|show|update|rotate|revoke` (and `deliveries|redeliver`, apps/cli/commands/app_deliveries.py)."""

import argparse

from rich.panel import Panel

from apps.accounts.access import SCOPES
from apps.accounts.models import Role
from apps.cli.commands import app_deliveries
from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.core.errors import ValidationFailed
from apps.integrations.representation import application_data
from apps.integrations.selectors import app_get, app_list
from apps.integrations.services import CREDENTIALS, app_register, app_revoke, app_rotate, app_update

_SECRETS = ("api_key", "client_id", "client_secret", "webhook_secret")


def register(verbs) -> None:
    group = verbs.add_parser("app", help="manage API applications (API key, OAuth2 client, webhooks)")
    sub = group.add_subparsers(dest="app_verb", metavar="VERB", required=True)

    create = leaf(sub, "register", register_app, "register an API application; its secrets are shown only here")
    create.add_argument("--name", required=True)
    create.add_argument("--webhook-url", default="", help="http(s) URL that receives signed webhooks")
    create.add_argument("--events", default=None, help="comma-separated event types: *, <entity>.*, <entity>.<verb>")
    create.add_argument("--scopes", default=None, help=f"comma-separated, among: {', '.join(SCOPES)} (default: no narrowing)")
    create.add_argument("--role", default=Role.OPERATOR, help=f"one of {', '.join(Role.values)} (default operator)")
    create.add_argument("--rate-limit", default=None, help="requests per minute (default: the tenant plan's)")

    leaf(sub, "list", list_apps, "list the tenant's API applications (never their secrets)")
    leaf(sub, "show", show_app, "show an API application").add_argument("app", help="the application's id (app_…)")

    update = leaf(sub, "update", update_app, "change an API application's name, webhook, scopes or rate limit")
    update.add_argument("app", help="the application's id (app_…)")
    update.add_argument("--name", default=argparse.SUPPRESS)
    update.add_argument("--webhook-url", default=argparse.SUPPRESS, help="'' stops webhooks")
    update.add_argument("--events", default=argparse.SUPPRESS, help="comma-separated event types")
    update.add_argument("--scopes", default=argparse.SUPPRESS, help="comma-separated; '' removes the narrowing")
    update.add_argument("--rate-limit", default=argparse.SUPPRESS, help="requests per minute, or 'default'")

    rotate = leaf(sub, "rotate", rotate_app, "replace an API application's credentials; the old ones stop working")
    rotate.add_argument("app", help="the application's id (app_…)")
    rotate.add_argument(
        "--credentials",
        default=None,
        help=f"comma-separated, among {', '.join(CREDENTIALS)} (default: the key, the client secret, the webhook secret)",
    )

    leaf(sub, "revoke", revoke_app, "revoke an API application and every credential of it").add_argument(
        "app", help="the application's id (app_…)"
    )
    app_deliveries.register(sub)


def _list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _rate_limit(value: str | None) -> int | None:
    if value is None or value.strip().lower() in ("default", "none", ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(
            "invalid --rate-limit", fields={"rate_limit_per_minute": "a whole number of requests per minute, or 'default'"}
        ) from None


def _render(title: str, note: str = ""):
    def render(out, d) -> None:
        lines = [
            f"name     {d['name']}",
            f"tenant   {d['tenant']}   role {d['role']}",
            f"scopes   {', '.join(d['scopes']) or '(no narrowing: the role decides)'}",
            f"webhook  {d['webhook_url'] or '-'}  events {', '.join(d['webhook_events']) or '-'}",
            f"limit    {d['rate_limit_per_minute'] or 'plan default'} requests/minute",
            f"key      {d['api_key_id'] or '-'}   client id {d['client_id'] or '-'}",
            f"created  {d['created_at']} by {d['created_by']}" + (f"   REVOKED {d['revoked_at']}" if d["revoked_at"] else ""),
        ]
        shown = [f"{name:<15}{d[name]}" for name in _SECRETS if name in d and name != "client_id"]
        if shown:
            lines += ["", *shown, "", "Store these now: they are not shown again."]
        if note:
            lines += ["", note]
        out.print(Panel("\n".join(lines), title=title))

    return render


def register_app(ctx, options) -> None:
    app, secrets = app_register(
        principal=ctx.principal,
        tenant=ctx.tenant,
        name=options["name"],
        webhook_url=options["webhook_url"],
        webhook_events=_list(options["events"]),
        scopes=_list(options["scopes"]),
        role=options["role"],
        rate_limit_per_minute=_rate_limit(options["rate_limit"]),
    )
    data = {**application_data(app, tenant_slug=ctx.tenant.slug), **secrets}
    ctx.emit(data, _render(f"API application {app.id}"))


def list_apps(ctx, options) -> None:
    apps = app_list(principal=ctx.principal, tenant_id=ctx.tenant.pk)
    results = [application_data(app, tenant_slug=ctx.tenant.slug) for app in apps]
    data = {"count": len(apps), "results": results}
    rows = [
        [
            a["id"],
            a["name"],
            a["role"],
            ", ".join(a["scopes"]) or "-",
            a["webhook_url"] or "-",
            a["rate_limit_per_minute"] or "plan",
            a["created_at"],
            a["revoked_at"] or "-",
        ]
        for a in results
    ]
    columns = ["id", "name", "role", "scopes", "webhook", "limit/min", "created", "revoked"]
    ctx.emit(data, lambda out, d: out.print(table(f"API applications of {ctx.tenant_slug}", columns, rows)))


def show_app(ctx, options) -> None:
    app = app_get(principal=ctx.principal, tenant_id=ctx.tenant.pk, app_id=options["app"])
    ctx.emit(application_data(app, tenant_slug=ctx.tenant.slug), _render(f"API application {app.id}"))


def update_app(ctx, options) -> None:
    changes = {}
    if "name" in options:
        changes["name"] = options["name"]
    if "webhook_url" in options:
        changes["webhook_url"] = options["webhook_url"]
    if "events" in options:
        changes["webhook_events"] = _list(options["events"])
    if "scopes" in options:
        changes["scopes"] = _list(options["scopes"])
    if "rate_limit" in options:
        changes["rate_limit_per_minute"] = _rate_limit(options["rate_limit"])
    app, secrets = app_update(principal=ctx.principal, tenant=ctx.tenant, app_id=options["app"], **changes)
    data = {**application_data(app, tenant_slug=ctx.tenant.slug), **secrets}
    ctx.emit(data, _render(f"API application {app.id}", "updated"))


def rotate_app(ctx, options) -> None:
    app, secrets = app_rotate(
        principal=ctx.principal, tenant=ctx.tenant, app_id=options["app"], credentials=_list(options["credentials"])
    )
    data = {**application_data(app, tenant_slug=ctx.tenant.slug), **secrets}
    ctx.emit(data, _render(f"API application {app.id}", "The previous credentials no longer work."))


def revoke_app(ctx, options) -> None:
    app = app_revoke(principal=ctx.principal, tenant=ctx.tenant, app_id=options["app"])
    ctx.emit(application_data(app, tenant_slug=ctx.tenant.slug), _render(f"API application {app.id}", "revoked"))
