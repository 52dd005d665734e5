"""The services a workflow run reaches through the engine's ports: datasets, artifacts, mail, events, workflows.

`ports_for` is called by the run's composition root (apps/runs/services.py), which hands in how to run a child
workflow: this module knows the ports, not the services that run workflows.
"""

from collections.abc import Callable

from apps.artifacts.ports import ArtifactsPort
from apps.core.errors import ApplicationError
from apps.datasets.ports import DatasetsPort
from apps.engine import NodeError
from apps.events.ports import EventsPort
from apps.mail.ports import MailPort


class WorkflowsPort:
    """Runs another deployed workflow of the same tenant as a child of this run, in this process, through
    `run_child` (apps/runs/services.py)."""

    def __init__(self, *, parent, run_child: Callable):
        self.parent = parent
        self.run_child = run_child

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
        try:
            child = self.run_child(
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


def ports_for(execution, *, run_child: Callable) -> dict:
    """The ports of one run; `run_child` runs a `subworkflow` node's child (apps/runs/services.py)."""
    artifacts = ArtifactsPort(execution_id=execution.id)
    return {
        "datasets": DatasetsPort(),
        "artifacts": artifacts,
        "mail": MailPort(
            artifacts=artifacts,
            run_id=execution.id,
            workflow_id=execution.workflow_id,
            workflow_slug=execution.workflow_slug,
            actor=execution.actor,
        ),
        "events": EventsPort(source=execution.channel, session_id=execution.session_id, execution_id=execution.id),
        "workflows": WorkflowsPort(parent=execution, run_child=run_child),
    }
