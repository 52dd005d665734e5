"""The tool catalogue an MCP caller sees, and calling a tool by name. Synchronous: it runs in a thread, in the
caller's tenant schema (server.py arranges both), and is the same code path for the `nexus mcp tools` command."""

from functools import cache
from typing import Any

import jsonschema
import mcp_types as types
from django.conf import settings

from apps.accounts.access import require
from apps.core.cache import TTLCache
from apps.core.principal import Principal
from apps.mcp_bridge import engine_tools, platform_tools, workflow_tools
from apps.mcp_bridge.results import Call, PendingRun, ToolResult, ToolSpec, UnknownTool, failure
from apps.tenants.models import Tenant

PLATFORM_TOOLS: dict[str, ToolSpec] = {
    spec.name: spec for spec in [*platform_tools.TOOLS, workflow_tools.RUN_WORKFLOW, *engine_tools.TOOLS]
}
# No `session_info` tool yet: sessions do not exist (apps/nexus_sessions is a later issue).


def as_mcp_tool(spec: ToolSpec) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        output_schema=spec.output_schema,
        annotations=types.ToolAnnotations(
            title=spec.title,
            read_only_hint=spec.read_only,
            destructive_hint=spec.destructive,
            idempotent_hint=spec.idempotent,
            open_world_hint=spec.open_world,
        ),
    )


_PLATFORM_MCP_TOOLS = [as_mcp_tool(spec) for spec in PLATFORM_TOOLS.values()]
# A tenant's workflow tools, per schema, for as long as deployment lookups are cached (NEXUS_DEPLOYMENT_CACHE_S):
# a new deployment shows in tools/list at once in the process that made it (the `deployments` topic) and
# within that time everywhere.
workflow_tools_cache = TTLCache(ttl_s=settings.NEXUS_DEPLOYMENT_CACHE_S, topics=("deployments",))


def tool_list(*, principal: Principal, tenant: Tenant) -> list[types.Tool]:
    """What this caller sees: the platform tools, then one tool per workflow deployed in its tenant. Every role
    sees every tool; calling one checks the role (a viewer's `run_workflow` is refused, not hidden)."""
    require(principal, "workflow.read", tenant_id=tenant.pk)
    listed = workflow_tools_cache.get(tenant.schema_name)
    if listed is None:
        specs = workflow_tools.workflow_tool_specs(principal=principal, tenant=tenant)
        listed = [as_mcp_tool(spec) for spec in specs]
        workflow_tools_cache.set(tenant.schema_name, listed)
    return [*_PLATFORM_MCP_TOOLS, *listed]


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(PLATFORM_TOOLS[name].input_schema)


def _argument_errors(name: str, arguments: dict[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for error in _validator(name).iter_errors(arguments):
        path = ".".join(str(part) for part in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = ".".join(p for p in (path, missing) if p)
        key = path or "arguments"
        fields[key] = error.message if key not in fields else f"{fields[key]}; {error.message}"
    return fields


def call_tool(
    *, principal: Principal, tenant: Tenant, name: str, arguments: dict[str, Any] | None, session_id: str | None = None
) -> ToolResult | PendingRun:
    """Call tool `name` for this caller. Raises UnknownTool for a name this caller has no tool for, in particular
    `workflow_<slug>` when no workflow of that slug is deployed in the caller's own tenant."""
    arguments = arguments if arguments is not None else {}
    call = Call(principal=principal, tenant=tenant, arguments=arguments, session_id=session_id)
    spec = PLATFORM_TOOLS.get(name)
    if spec is not None:
        if not isinstance(arguments, dict):
            return failure("arguments must be an object", code="invalid_arguments", fields={"arguments": "must be an object"})
        fields = _argument_errors(name, arguments)
        if fields:
            return failure(f"invalid arguments for {name}", code="invalid_arguments", fields=fields)
        return spec.handler(call)
    slug = workflow_tools.slug_of(name)
    # The lookup runs in the caller's schema: another tenant's workflow is not found, whatever its name.
    if slug is None or not workflow_tools.is_deployed(slug):
        raise UnknownTool(name)
    return workflow_tools.call_workflow_tool(call, slug)
