"""Outbox reads, inside the caller's tenant schema: another tenant's message does not exist."""

from django.db.models import Q

from apps.accounts.access import require
from apps.core.errors import NotFound, ValidationFailed
from apps.core.principal import Principal
from apps.mail.models import MailMessage, MailStatus

MAX_LIMIT = 500
READ_ACTION = "mail.read"


def mail_get(*, principal: Principal, tenant_id: int, mail_id: str) -> MailMessage:
    require(principal, READ_ACTION, tenant_id=tenant_id)
    message = MailMessage.objects.filter(id=mail_id).first() if isinstance(mail_id, str) else None
    if message is None:
        raise NotFound(f"mail '{mail_id}' does not exist", code="mail_not_found")
    return message


def mail_list(
    *,
    principal: Principal,
    tenant_id: int,
    execution: str | None = None,
    workflow: str | None = None,
    status: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[MailMessage]]:
    """The tenant's outbox, newest first: those of one run (`execution`, run_…), of one workflow (`workflow`, its
    id or slug), with one `status`."""
    require(principal, READ_ACTION, tenant_id=tenant_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit out of range", fields={"limit": f"between 1 and {MAX_LIMIT}"})
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationFailed("offset out of range", fields={"offset": "0 or more"})
    if status is not None and status not in MailStatus.values:
        raise ValidationFailed("unknown status", fields={"status": f"one of {', '.join(MailStatus.values)}"})
    queryset = MailMessage.objects.all()
    if execution is not None:
        queryset = queryset.filter(execution_id=execution)
    if workflow is not None:
        queryset = queryset.filter(Q(workflow_id=workflow) | Q(workflow_slug=workflow))
    if status is not None:
        queryset = queryset.filter(status=status)
    return queryset.count(), list(queryset.order_by("-created_at", "-id")[offset : offset + limit])
