"""The engine's mail port: an `email` node's message, sent through the mail service for the run's tenant."""

from typing import Any

from apps.core.errors import ApplicationError
from apps.engine import NodeError
from apps.events.hooks import connection_tenant
from apps.mail.services import mail_send, mail_send_for_run


class MailPort:
    """Sends through the mail service (allow-list, daily quota, audit row); attachments are the run's
    artifacts. A refusal (recipient, quota) fails the node with the service's code and reason and is never
    retried; a mail server's failure (`email_failed`) may be."""

    def __init__(
        self, *, artifacts, run_id: str | None = None, actor: str | None = None, principal=None, source: str = "email_node"
    ):
        self.artifacts = artifacts
        self.source = source
        self.run_id = run_id
        self.actor = actor
        self.principal = principal
        # The run's tenant: the engine may call a node on a worker thread, whose connection starts on public.
        self.tenant_id = connection_tenant()[0]

    def send(self, *, to, cc=(), subject: str, body: str, html: str | None = None, attachment_ids=()) -> dict:
        if self.tenant_id is None:
            raise NodeError("port_unavailable", "mail is sent for a tenant, and this run is in none", retryable=False)
        try:
            attachments = [self.artifacts.load(artifact_id) for artifact_id in attachment_ids or ()]
            message: dict[str, Any] = {
                "tenant_id": self.tenant_id,
                "to": list(to),
                "cc": list(cc or ()),
                "subject": subject,
                "body": body,
                "html": html,
                "attachments": attachments,
                "source": self.source,
            }
            if self.principal is not None:  # asked for directly (an MCP agent)
                return mail_send(principal=self.principal, **message)
            return mail_send_for_run(run_id=self.run_id, actor=self.actor, **message)
        except ApplicationError as error:
            raise NodeError(error.code, error.detail, retryable=error.code == "email_failed") from None
