"""The one JSON shape of an outbox message, shared by every channel (lists leave the bodies out)."""

from typing import Any

from apps.core.dates import iso_utc
from apps.mail.models import MailMessage


def mail_data(message: MailMessage, *, with_body: bool = True) -> dict[str, Any]:
    data = {
        "id": message.id,
        "message_id": message.message_id,
        "from": message.from_address,
        "to": message.to,
        "cc": message.cc,
        "subject": message.subject,
        "attachments": message.attachments,
        "execution_id": message.execution_id,
        "workflow_id": message.workflow_id,
        "workflow": message.workflow_slug,
        "actor": message.actor,
        "source": message.source,
        "delivered_to": message.transport,
        "status": message.status,
        "error": message.error or None,
        "created_at": iso_utc(message.created_at),
    }
    if with_body:
        data["body"] = message.body
        data["html"] = message.html
    return data
