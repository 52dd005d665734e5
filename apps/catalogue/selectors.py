"""Which tools a caller sees: the platform tools, then one `workflow_<slug>` per workflow of its tenant deployed
to production, described by the deployed version (its input schema, its outputs, whether it touches the world)."""

import re
from typing import Any

from django.conf import settings

from apps.accounts.access import require
from apps.catalogue.tools import ENVIRONMENT, PLATFORM_TOOLS, PREFIX, Tool
from apps.core.cache import TTLCache
from apps.core.principal import Principal
from apps.engine import default_registry
from apps.tenants.models import Tenant
from apps.workflows.models import Deployment, Workflow
from apps.workflows.selectors import deployment_target, deployments_by_workflow, workflow_list

# Workflow slugs: lower-case letters, digits and '-' (apps/workflows/services.py); anything else is no tool.
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,78}[a-z0-9])?$")
# A tenant's workflow tools, per schema, for as long as deployment lookups are cached (NEXUS_DEPLOYMENT_CACHE_S):
# a new deployment shows at once in the process that made it (the `deployments` topic) and within that time
# everywhere.
workflow_tools_cache = TTLCache(ttl_s=settings.NEXUS_DEPLOYMENT_CACHE_S, topics=("deployments",))


def tool_name(slug: str) -> str:
    return PREFIX + slug


def slug_of(name: str) -> str | None:
    """The workflow slug a `workflow_<slug>` tool name refers to, or None when the name cannot be one."""
    if not name.startswith(PREFIX):
        return None
    slug = name[len(PREFIX) :]
    return slug if _SLUG.match(slug) else None


def production_deployment(deployments: list[Deployment]) -> Deployment | None:
    return next((d for d in deployments if d.environment == ENVIRONMENT), None)


def input_schema(definition: dict) -> dict[str, Any]:
    """The workflow's input JSON Schema; MCP wants `"type": "object"` at the root, which workflow inputs always are."""
    schema = dict(definition.get("inputs") or {})
    schema.setdefault("type", "object")
    return schema


def output_schema(definition: dict) -> dict[str, Any]:
    """An object with one property per declared output. Outputs are expressions, so their types are not known
    statically; a fallback can make any of them null, so none is required."""
    return {"type": "object", "properties": {name: {} for name in definition.get("outputs") or {}}}


def _side_effects(definition: dict) -> bool:
    """Whether any node may touch the world (mail, HTTP, artifacts...): an unknown type counts as one."""
    for node in definition.get("nodes") or []:
        node_type = default_registry.get(node.get("type", "")) if isinstance(node, dict) else None
        if node_type is None or not node_type.pure:
            return True
    return False


def workflow_tool(workflow: Workflow, deployment: Deployment) -> Tool:
    definition = deployment.version.definition
    effects = _side_effects(definition)
    about = (workflow.description or workflow.name or workflow.slug).strip()
    return Tool(
        name=tool_name(workflow.slug),
        title=workflow.name or workflow.slug,
        description=(
            f"{about}\n\nRuns workflow '{workflow.slug}' (deployed version {deployment.version.number}, {ENVIRONMENT}) "
            "with these arguments as its inputs and returns its outputs. The run is recorded: its id is in the "
            "result's text and _meta."
        ),
        input_schema=input_schema(definition),
        output_schema=output_schema(definition),
        read_only=False,
        destructive=effects,
        idempotent=not effects,
        open_world=effects,
    )


def workflow_tools(*, principal: Principal, tenant_id: int) -> list[Tool]:
    """One tool per workflow of the caller's tenant deployed to production (needs `workflow.read`)."""
    workflows = workflow_list(principal=principal, tenant_id=tenant_id)
    deployments = deployments_by_workflow([w.id for w in workflows])
    tools = []
    for workflow in workflows:
        deployment = production_deployment(deployments[workflow.id])
        if deployment is not None and _SLUG.match(workflow.slug):
            tools.append(workflow_tool(workflow, deployment))
    return tools


def tool_catalogue(*, principal: Principal, tenant: Tenant) -> list[Tool]:
    """What this caller sees, in the caller's tenant schema: the platform tools, then one tool per workflow
    deployed there. Every role sees every tool; calling one checks the role (a viewer's `run_workflow` is
    refused, not hidden)."""
    require(principal, "workflow.read", tenant_id=tenant.pk)
    listed = workflow_tools_cache.get(tenant.schema_name)
    if listed is None:
        listed = workflow_tools(principal=principal, tenant_id=tenant.pk)
        workflow_tools_cache.set(tenant.schema_name, listed)
    return [*PLATFORM_TOOLS.values(), *listed]


def is_deployed(slug: str) -> bool:
    """Whether `slug` names a workflow deployed to production in the current schema (the caller's tenant)."""
    return deployment_target(ref=slug, environment=ENVIRONMENT) is not None
