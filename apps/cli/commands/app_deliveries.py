"""`nexus app deliveries|redeliver`: registered on the `app` group by apps/cli/commands/applications.py."""

from rich.panel import Panel

from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.integrations.models import DeliveryStatus
from apps.integrations.representation import delivery_data
from apps.integrations.selectors import DEFAULT_LIMIT, delivery_list
from apps.integrations.services import delivery_redeliver


def register(app_verbs) -> None:
    """Add the delivery verbs to the `app` group's subparsers."""
    deliveries = leaf(app_verbs, "deliveries", list_deliveries, "list an application's webhook deliveries, newest first")
    deliveries.add_argument("app", help="the application's id (app_…)")
    deliveries.add_argument("--status", choices=DeliveryStatus.values, default=None, help="only deliveries in this status")
    deliveries.add_argument("--event-type", default=None, help="only this event type, or <entity>.* (e.g. execution.*)")
    deliveries.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help=f"at most this many (default {DEFAULT_LIMIT})")
    redeliver = leaf(app_verbs, "redeliver", redeliver_delivery, "send a webhook delivery again, whatever its status")
    redeliver.add_argument("app", help="the application's id (app_…)")
    redeliver.add_argument("delivery", help="the delivery's id (whd_…)")


def _error(d: dict) -> str:
    return d["last_error"][:60] + ("…" if len(d["last_error"]) > 60 else "")


def list_deliveries(ctx, options) -> None:
    deliveries = delivery_list(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        app_id=options["app"],
        status=options["status"],
        event_type=options["event_type"],
        limit=options["limit"],
    )
    data = {"deliveries": [delivery_data(d) for d in deliveries]}
    rows = [
        [
            d["id"],
            d["event_type"],
            d["status"],
            d["attempts"],
            d["response_code"] or "-",
            "-" if d["latency_ms"] is None else f"{d['latency_ms']:.1f}",
            d["next_attempt_at"] or "-",
            _error(d) or "-",
            d["created_at"],
        ]
        for d in data["deliveries"]
    ]
    columns = ["id", "event", "status", "attempts", "code", "ms", "next attempt", "last error", "created"]
    ctx.emit(data, lambda out, d: out.print(table(f"webhook deliveries of {options['app']}", columns, rows)))


def redeliver_delivery(ctx, options) -> None:
    delivery = delivery_redeliver(
        principal=ctx.principal, tenant_id=ctx.tenant.pk, app_id=options["app"], delivery_id=options["delivery"]
    )
    ctx.emit(
        delivery_data(delivery),
        lambda out, d: out.print(
            Panel(f"{d['event_type']} ({d['event_id']}) is pending again and will be sent shortly.", title=d["id"])
        ),
    )
