"""Send one email message for a tenant: the recipient allow-list, the daily quota, the send, its audit row.

Every message the platform sends for a tenant goes through here: `mail_send_for_run` for the `email` node of a run
(through the run's mail port, apps/mail/ports.py), `mail_send` for a caller asking directly (the MCP tool
send_email_report, which runs that node with the caller's principal). An operator can
otherwise make the platform mail anyone, as often as they like, unrecorded: so recipients are checked against
NEXUS_MAIL_ALLOWED_RECIPIENTS first, then one message is taken from the tenant's NEXUS_MAIL_PER_TENANT_PER_DAY,
and each message sent leaves a `mail.sent` audit row (committed at once: the message has left, whatever
happens to the caller's transaction).

Where it goes (apps/mail/transport.py): to the configured mail server, or, with none configured, nowhere beyond
the tenant's outbox, so a zero-configuration platform runs mail-sending workflows to the end. Either way the message
is kept in the outbox (`MailMessage`, with where it went and its status; a server's refusal too), capped at
NEXUS_MAIL_OUTBOX_MAX messages per tenant, oldest dropped first. The allow-list and the quota apply the same way to
both transports: a captured message counts as sent.
"""

from collections.abc import Sequence

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, make_msgid
from django.utils import timezone

from apps.accounts.access import require
from apps.audit.recorder import audit_record
from apps.core.errors import ApplicationError, PermissionDenied
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.mail.models import MailMessage, MailStatus
from apps.mail.transport import mail_delivers, mail_transport
from apps.quotas.limits import tenant_limits
from apps.quotas.services import MAIL_SENT_ACTION, mail_quota_consume, mail_quota_release
from apps.tenants.guard import require_schema

# What a principal needs to send mail itself, outside a run (apps/accounts/access.py).
MAIL_SEND_ACTION = "mail.send"


class RecipientNotAllowed(PermissionDenied):
    code = "recipient_not_allowed"


class MailFailed(ApplicationError):
    status = 502
    code = "email_failed"


def recipient_allowed(address: str, allowed: Sequence[str]) -> bool:
    """Whether `address` is an exact entry of `allowed` or in one of its `@domain` entries (case-insensitive).
    An empty list allows anyone."""
    if not allowed:
        return True
    address = address.strip().lower()
    domain = "@" + address.rsplit("@", 1)[-1]
    return address in allowed or domain in allowed


def mail_send(
    *,
    principal: Principal,
    tenant_id: int,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    attachment_ids: Sequence[str] = (),
    source: str,
) -> dict:
    """Send one message (attachments: (name, content type, bytes), from the artifacts `attachment_ids` when they
    are artifacts) for a caller holding `mail.send` (PermissionDenied, audited, nothing sent) and record it;
    `source` says what sent it (`send_email_report`). Returns `{"message_id", "accepted", "attachments",
    "delivered_to", "mail_id"}`: `delivered_to` is "local outbox" or the server (`smtp://host:port`), `mail_id`
    the outbox entry (msg_…). Raises RecipientNotAllowed or QuotaExceeded having sent nothing, MailFailed when the
    mail server refused it (the quota is given back; the outbox keeps it as `failed`)."""
    require(principal, MAIL_SEND_ACTION, tenant_id=tenant_id)
    return _send(
        tenant_id=tenant_id,
        to=to,
        cc=cc,
        subject=subject,
        body=body,
        html=html,
        attachments=attachments,
        attachment_ids=attachment_ids,
        principal=principal,
        actor=None,
        run_id=None,
        workflow_id=None,
        workflow_slug=None,
        source=source,
    )


def mail_send_for_run(
    *,
    run_id: str | None,
    actor: str | None,
    tenant_id: int,
    to: Sequence[str],
    cc: Sequence[str] = (),
    subject: str,
    body: str,
    html: str | None = None,
    attachments: Sequence[tuple[str, str, bytes]] = (),
    attachment_ids: Sequence[str] = (),
    workflow_id: str | None = None,
    workflow_slug: str | None = None,
    source: str = "email_node",
) -> dict:
    """`mail_send` without an access check, for a workflow run (authorised when it started): the audit row names
    the run's `actor` and `run_id`, the outbox entry the run and its workflow. The same allow-list, quota,
    transport and errors."""
    return _send(
        tenant_id=tenant_id,
        to=to,
        cc=cc,
        subject=subject,
        body=body,
        html=html,
        attachments=attachments,
        attachment_ids=attachment_ids,
        principal=None,
        actor=actor,
        run_id=run_id,
        workflow_id=workflow_id,
        workflow_slug=workflow_slug,
        source=source,
    )


def _send(
    *,
    tenant_id: int,
    to: Sequence[str],
    cc: Sequence[str],
    subject: str,
    body: str,
    html: str | None,
    attachments: Sequence[tuple[str, str, bytes]],
    attachment_ids: Sequence[str],
    principal: Principal | None,
    actor: str | None,
    run_id: str | None,
    workflow_id: str | None,
    workflow_slug: str | None,
    source: str,
) -> dict:
    require_schema(tenant_id)  # the outbox entry goes into the connection's schema: it must be this tenant's
    recipients = [*to, *cc]
    allowed = settings.NEXUS_MAIL_ALLOWED_RECIPIENTS
    refused = [address for address in recipients if not recipient_allowed(address, allowed)]
    if refused:
        raise RecipientNotAllowed(
            f"recipient not allowed by NEXUS_MAIL_ALLOWED_RECIPIENTS: {', '.join(refused)}",
            fields={"recipients": f"not allowed: {', '.join(refused)}"},
        )
    tenant = tenant_limits(tenant_id)
    quota = mail_quota_consume(tenant=tenant)
    message_id = make_msgid(domain="nexus.local")
    message = EmailMultiAlternatives(
        subject=subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(to),
        cc=list(cc),
        headers={"Message-ID": message_id},
    )
    if html:
        message.attach_alternative(html, "text/html")
    for name, content_type, data in attachments:
        message.attach(name, data, content_type)
    transport, delivers = mail_transport(), mail_delivers()
    entry = {
        "message_id": message_id,
        "to": list(to),
        "cc": list(cc),
        "subject": subject,
        "body": body,
        "html": html,
        "attachments": [
            {
                "name": name,
                "content_type": content_type,
                "size": len(data),
                "artifact_id": attachment_ids[index] if index < len(attachment_ids) else None,
            }
            for index, (name, content_type, data) in enumerate(attachments)
        ],
        "execution_id": run_id,
        "workflow_id": workflow_id,
        "workflow_slug": workflow_slug,
        "actor": principal.actor if principal is not None else actor or "system",
        "source": source,
        "transport": transport,
    }
    try:
        if delivers:
            message.send(fail_silently=False)
        else:
            message.message()  # built as a server would get it: a header it refuses is refused here too
    except Exception as error:  # smtplib.SMTPException, OSError, bad headers: all mean "not sent"
        mail_quota_release(quota)
        reason = f"could not send email: {error}"
        _outbox_keep(entry, status=MailStatus.FAILED, error=reason)
        raise MailFailed(reason) from None
    stored = _outbox_keep(entry, status=MailStatus.SENT if delivers else MailStatus.CAPTURED)
    audit_record(
        action=MAIL_SENT_ACTION,
        tenant_id=tenant_id,
        principal=principal,
        actor=actor,
        target=message_id,
        details={
            "recipients": recipients,
            "recipient_count": len(recipients),
            "subject": subject[:200],
            "attachments": len(attachments),
            "run_id": run_id,
            "source": source,
            "delivered_to": transport,
            "mail_id": stored.id,
        },
        durable=True,
    )
    return {
        "message_id": message_id,
        "accepted": recipients,
        "attachments": len(attachments),
        "delivered_to": transport,
        "mail_id": stored.id,
    }


def _outbox_keep(entry: dict, *, status: str, error: str = "") -> MailMessage:
    """Store one message in the current tenant schema's outbox, then drop what lies past NEXUS_MAIL_OUTBOX_MAX.

    Written on the caller's connection: every door sends outside a transaction (a run's nodes, an MCP tool), so
    it commits at once. Ids sort by time, so the cut is one index range on the primary key."""
    stored = MailMessage.objects.create(
        id=new_id("msg"),
        from_address=settings.DEFAULT_FROM_EMAIL,
        status=status,
        error=error,
        created_at=timezone.now(),
        **entry,
    )
    keep = settings.NEXUS_MAIL_OUTBOX_MAX
    oldest_dropped = MailMessage.objects.order_by("-id").values_list("id", flat=True)[keep : keep + 1].first()
    if oldest_dropped is not None:
        MailMessage.objects.filter(id__lte=oldest_dropped).delete()
    return stored
