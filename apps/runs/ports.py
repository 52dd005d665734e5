"""The services a workflow run reaches through the engine's ports: datasets, artifacts, mail, events, workflows."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, make_msgid

from apps.core.errors import ApplicationError
from apps.engine import NodeError


class MailPort:
    """Sends through Django's email backend (SMTP by default); attachments are the run's artifacts."""

    def __init__(self, *, artifacts):
        self.artifacts = artifacts

    def send(self, *, to, cc=(), subject: str, body: str, html: str | None = None, attachment_ids=()) -> dict:
        message_id = make_msgid(domain="nexus.local")
        message = EmailMultiAlternatives(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=list(to),
            cc=list(cc or ()),
            headers={"Message-ID": message_id},
        )
        if html:
            message.attach_alternative(html, "text/html")
        for artifact_id in attachment_ids or ():
            name, content_type, data = self.artifacts.load(artifact_id)
            message.attach(name, data, content_type)
        try:
            message.send(fail_silently=False)
        except Exception as error:  # smtplib.SMTPException, OSError, bad headers: all mean "not sent"
            raise NodeError("email_failed", f"could not send email: {error}") from None
        return {"message_id": message_id, "accepted": [*to, *(cc or ())], "attachments": len(attachment_ids or ())}


class WorkflowsPort:
    """Runs another deployed workflow of the same tenant as a child of this run, in this process."""

    def __init__(self, *, parent):
        self.parent = parent

    def run(
        self, *, workflow: str, inputs: dict, environment: str = "production", depth: int = 1, deadline: float | None = None
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
        "mail": MailPort(artifacts=artifacts),
        "events": EventsPort(source=execution.channel, session_id=execution.session_id, execution_id=execution.id),
        "workflows": WorkflowsPort(parent=execution),
    }
