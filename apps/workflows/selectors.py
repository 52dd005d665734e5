"""Workflow reads, always inside the caller's tenant schema: another tenant's workflow does not exist."""

from apps.accounts.access import require
from apps.core.errors import NotFound
from apps.core.principal import Principal
from apps.workflows.models import Deployment, Workflow, WorkflowVersion


def _by_ref(queryset, ref: str):
    if ref.startswith("wf_"):
        return queryset.filter(id=ref)
    return queryset.filter(slug=ref)


def workflow_get(*, principal: Principal, tenant_id: int, ref: str, action: str = "workflow.read") -> Workflow:
    require(principal, action, tenant_id=tenant_id)
    workflow = _by_ref(Workflow.objects.filter(deleted_at__isnull=True), ref or "").select_related("latest_version").first()
    if workflow is None:
        raise NotFound(f"workflow '{ref}' does not exist", code="workflow_not_found")
    return workflow


def workflow_list(*, principal: Principal, tenant_id: int) -> list[Workflow]:
    require(principal, "workflow.read", tenant_id=tenant_id)
    return list(Workflow.objects.filter(deleted_at__isnull=True).select_related("latest_version").order_by("slug"))


def deployments_by_workflow(workflow_ids: list[str]) -> dict[str, list[Deployment]]:
    result: dict[str, list[Deployment]] = {wid: [] for wid in workflow_ids}
    for deployment in Deployment.objects.filter(workflow_id__in=workflow_ids).select_related("version"):
        result[deployment.workflow_id].append(deployment)
    return result


def deployment_target(*, ref: str, environment: str) -> tuple[str, str, str] | None:
    """(workflow id, slug, deployed version id) in one query, or None when the workflow is not deployed there."""
    lookup = {"workflow_id": ref} if ref.startswith("wf_") else {"workflow__slug": ref}
    return (
        Deployment.objects.filter(environment=environment, workflow__deleted_at__isnull=True, **lookup)
        .values_list("workflow_id", "workflow__slug", "version_id")
        .first()
    )


def version_definition(version_id: str) -> dict:
    return WorkflowVersion.objects.values_list("definition", flat=True).get(id=version_id)
