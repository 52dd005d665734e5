"""Workflow reads, always inside the caller's tenant schema: another tenant's workflow does not exist."""

from django.conf import settings
from django.db import connection

from apps.accounts.access import require
from apps.core.cache import TTLCache
from apps.core.errors import Conflict, NotFound
from apps.core.principal import Principal
from apps.tenants.connection import current_schema
from apps.workflows.compiled import compile_definition
from apps.workflows.models import Deployment, Workflow, WorkflowVersion


def _by_ref(queryset, ref: str):
    if ref.startswith("wf_"):
        return queryset.filter(id=ref)
    return queryset.filter(slug=ref)


def workflow_latest_version(workflow: Workflow) -> WorkflowVersion:
    """The workflow's latest version. Every workflow is created with its first one (the column is nullable only
    because the workflow row is written before it), so a missing one is a Conflict, never an AttributeError."""
    version = workflow.latest_version
    if version is None:
        raise Conflict(f"workflow '{workflow.slug}' has no version", code="workflow_without_version")
    return version


def workflow_get(*, principal: Principal, tenant_id: int, ref: str, action: str = "workflow.read") -> Workflow:
    require(principal, action, tenant_id=tenant_id)
    workflow = _by_ref(Workflow.objects.filter(deleted_at__isnull=True), ref or "").select_related("latest_version").first()
    if workflow is None:
        raise NotFound(f"workflow '{ref}' does not exist", code="workflow_not_found")
    return workflow


def workflow_list(*, principal: Principal, tenant_id: int) -> list[Workflow]:
    require(principal, "workflow.read", tenant_id=tenant_id)
    return list(Workflow.objects.filter(deleted_at__isnull=True).select_related("latest_version").order_by("slug"))


def workflow_validate(*, principal: Principal, tenant_id: int, definition) -> dict:
    """Check a definition without storing it: `{valid, nodes, inline_eligible}`, or ValidationFailed naming
    what is wrong. Every door (API, CLI) validates through here, so every door checks the same access."""
    require(principal, "workflow.read", tenant_id=tenant_id)
    compiled = compile_definition(definition)
    return {"valid": True, "nodes": compiled.node_ids, "inline_eligible": compiled.is_inline_eligible}


def deployments_by_workflow(workflow_ids: list[str]) -> dict[str, list[Deployment]]:
    result: dict[str, list[Deployment]] = {wid: [] for wid in workflow_ids}
    for deployment in Deployment.objects.filter(workflow_id__in=workflow_ids).select_related("version"):
        result[deployment.workflow_id].append(deployment)
    return result


# The execute hot path: one query in SQL, because building it with the ORM cost more than running it.
_TARGET_SQL = (
    "SELECT w.id, w.slug, d.version_id, v.number FROM workflows_deployment d"
    " JOIN workflows_workflow w ON w.id = d.workflow_id"
    " JOIN workflows_workflowversion v ON v.id = d.version_id"
    " WHERE d.environment = %s AND w.deleted_at IS NULL AND w.{column} = %s"
)
_TARGET_BY_ID = _TARGET_SQL.format(column="id")
_TARGET_BY_SLUG = _TARGET_SQL.format(column="slug")


# Forgotten whenever a deployment changes (the `deployments` topic, apps/core/cache.py).
target_cache = TTLCache(ttl_s=settings.NEXUS_DEPLOYMENT_CACHE_S, topics=("deployments",))


def deployment_target(*, ref: str, environment: str) -> tuple[str, str, str, int] | None:
    """(workflow id, slug, version id, version number) deployed to `environment`, or None."""
    cache_key = (current_schema(), environment, ref)
    target = target_cache.get(cache_key)
    if target is None:
        with connection.cursor() as cursor:
            cursor.execute(_TARGET_BY_ID if ref.startswith("wf_") else _TARGET_BY_SLUG, [environment, ref])
            target = cursor.fetchone()
        if target is not None:
            target_cache.set(cache_key, target)
    return target


def version_definition(version_id: str) -> dict:
    return WorkflowVersion.objects.values_list("definition", flat=True).get(id=version_id)
