"""`nexus mail list|show`: the tenant's outbox, the mail its runs and agents sent or captured."""

from rich.console import Group
from rich.markup import escape
from rich.panel import Panel
from rich.text import Text

from apps.cli.context import table
from apps.cli.verbs import leaf
from apps.mail.models import MailStatus
from apps.mail.representation import mail_data
from apps.mail.selectors import MAX_LIMIT, mail_get, mail_list


def register(verbs) -> None:
    group = verbs.add_parser("mail", help="the outbox: mail sent, or captured locally when no mail server is set")
    sub = group.add_subparsers(dest="mail_verb", metavar="VERB", required=True)
    listing = leaf(sub, "list", list_mail, "list the outbox, newest first (without bodies)")
    listing.add_argument("--execution", default=None, help="only the mail of this run (run_…)")
    listing.add_argument("--workflow", default=None, help="only the mail of this workflow (wf_… or slug)")
    listing.add_argument("--status", default=None, choices=MailStatus.values)
    listing.add_argument("--limit", type=int, default=50, help=f"1 to {MAX_LIMIT} (default 50)")
    listing.add_argument("--offset", type=int, default=0)
    show = leaf(sub, "show", show_mail, "show one message with its body")
    show.add_argument("mail", help="msg_…")


def list_mail(ctx, options) -> None:
    count, messages = mail_list(
        principal=ctx.principal,
        tenant_id=ctx.tenant.pk,
        execution=options["execution"],
        workflow=options["workflow"],
        status=options["status"],
        limit=options["limit"],
        offset=options["offset"],
    )
    data = {"count": count, "mail": [mail_data(m, with_body=False) for m in messages]}
    ctx.emit(
        data,
        lambda out, d: out.print(
            table(
                f"mail in {ctx.tenant_slug} ({len(d['mail'])} of {d['count']})",
                ["id", "to", "subject", "status", "delivered to", "execution", "created"],
                [
                    [
                        m["id"],
                        escape(", ".join(m["to"] + m["cc"])),
                        escape(m["subject"]),
                        m["status"],
                        escape(m["delivered_to"]),
                        m["execution_id"],
                        m["created_at"],
                    ]
                    for m in d["mail"]
                ],
            )
        ),
    )


def _render_message(out, data) -> None:
    head = Text()
    for label, value in (
        ("From", data["from"]),
        ("To", ", ".join(data["to"])),
        ("Cc", ", ".join(data["cc"])),
        ("Subject", data["subject"]),
        ("Status", f"{data['status']} → {data['delivered_to']}" + (f" ({data['error']})" if data["error"] else "")),
        ("Run", f"{data['execution_id']} ({data['workflow']})" if data["execution_id"] else None),
        ("Sent by", f"{data['actor']} via {data['source']} at {data['created_at']}"),
        ("Attachments", ", ".join(f"{a['name']} ({a['size']} bytes)" for a in data["attachments"])),
    ):
        if value:
            head.append(f"{label}: ", style="bold").append(str(value) + "\n")
    out.print(Panel(Group(head, Text(data["body"])), title=data["id"]))


def show_mail(ctx, options) -> None:
    message = mail_get(principal=ctx.principal, tenant_id=ctx.tenant.pk, mail_id=options["mail"])
    ctx.emit(mail_data(message), _render_message)
