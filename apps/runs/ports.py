"""The services a workflow run reaches through the engine's ports: datasets, artifacts, mail, events, workflows."""

from apps.core.errors import ApplicationError
from apps.engine import NodeError
from apps.events.hooks import connection_tenant
from apps.mail.services import mail_send


class MailPort:
    """Sends through the mail service (apps/mail: allow-list, daily quota, audit row); attachments are the
    run's artifacts. A refusal (recipient, quota) fails the node with the service's code and reason and is
    never retried; a mail server's failure (`email_failed`) may be."""

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
            return mail_send(
                tenant_id=self.tenant_id,
                to=list(to),
                cc=list(cc or ()),
                subject=subject,
                body=body,
                html=html,
                attachments=attachments,
                principal=self.principal,
                actor=self.actor,
                run_id=self.run_id,
                source=self.source,
            )
        except ApplicationError as error:
            raise NodeError(error.code, error.detail, retryable=error.code == "email_failed") from None


class WorkflowsPort:
    """Runs another deployed workflow of the same tenant as a child of this run, in this process."""

    def __init__(self, *, parent):
        self.parent = parent

    def run(
        self,
        *,
        workflow: str,
        inputs: dict,
        environment: str = "production",
        depth: int = 1,
        deadline: float | None = None,
        threads=None,
    ) -> dict:
        from apps.runs.services import run_child

        try:
            child = run_child(
                parent=self.parent,
                workflow_ref=workflow,
                inputs=inputs,
                environment=environment,
                depth=depth,
                deadline=deadline,
                threads=threads,
            )
        except ApplicationError as error:
            raise NodeError(error.code, error.detail) from None
        return {
            "execution_id": child.id,
            "status": child.status,
            "outputs": child.outputs,
            "error": child.error,
        }


def ports_for(execution) -> dict:
    from apps.artifacts.ports import ArtifactsPort
    from apps.datasets.ports import DatasetsPort
    from apps.events.ports import EventsPort

    artifacts = ArtifactsPort(execution_id=execution.id)
    return {
        "datasets": DatasetsPort(),
        "artifacts": artifacts,
        "mail": MailPort(artifacts=artifacts, run_id=execution.id, actor=execution.actor),
        "events": EventsPort(source=execution.channel, session_id=execution.session_id, execution_id=execution.id),
        "workflows": WorkflowsPort(parent=execution),
    }
