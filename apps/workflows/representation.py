"""The one JSON shape of a workflow, shared by every channel."""

from typing import Any

from apps.core.dates import iso_utc
from apps.workflows.models import Deployment, Workflow


def deployment_data(deployment: Deployment) -> dict[str, Any]:
    return {
        "environment": deployment.environment,
        "version": deployment.version.number,
        "version_id": deployment.version_id,
        "deployed_by": deployment.deployed_by,
        "deployed_at": iso_utc(deployment.deployed_at),
    }


def workflow_data(
    workflow: Workflow, *, deployments: list[Deployment] | None = None, with_definition: bool = False
) -> dict[str, Any]:
    version = workflow.latest_version
    data: dict[str, Any] = {
        "id": workflow.id,
        "slug": workflow.slug,
        "name": workflow.name,
        "description": workflow.description,
        "version": version.number if version else None,
        "version_id": version.id if version else None,
        "input_schema": (version.definition.get("inputs") or {"type": "object"}) if version else None,
        "created_by": workflow.created_by,
        "created_at": iso_utc(workflow.created_at),
        "updated_at": iso_utc(workflow.updated_at),
    }
    if deployments is not None:
        data["deployments"] = [deployment_data(d) for d in deployments]
    if with_definition and version:
        data["definition"] = version.definition
    return data
