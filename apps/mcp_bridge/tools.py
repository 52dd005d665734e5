"""Serving the tool catalogue (apps/catalogue) over MCP, and calling a tool by name. Synchronous: it runs in a
thread, in the caller's tenant schema (server.py arranges both)."""

from functools import cache
from typing import Any
from weakref import WeakKeyDictionary

import jsonschema
import mcp_types as types

from apps.catalogue.selectors import is_deployed, slug_of, tool_catalogue
from apps.catalogue.tools import PLATFORM_TOOLS, Tool
from apps.core.principal import Principal
from apps.mcp_bridge import engine_tools, platform_tools, workflow_tools
from apps.mcp_bridge.results import Call, PendingRun, ToolResult, UnknownTool, failure
from apps.tenants.models import Tenant

# What each platform tool of the catalogue does here (a test checks that every one has a handler).
HANDLERS = {**platform_tools.HANDLERS, **workflow_tools.HANDLERS, **engine_tools.HANDLERS}
# The MCP form of each catalogue entry, made once per entry (the catalogue caches a tenant's workflow tools).
_mcp_tools: "WeakKeyDictionary[Tool, types.Tool]" = WeakKeyDictionary()


def as_mcp_tool(tool: Tool) -> types.Tool:
    made = _mcp_tools.get(tool)
    if made is None:
        made = _mcp_tools[tool] = types.Tool.model_validate(tool.as_dict())
    return made


def tool_list(*, principal: Principal, tenant: Tenant) -> list[types.Tool]:
    """What this caller sees (apps/catalogue/selectors.py `tool_catalogue`), as MCP tools."""
    return [as_mcp_tool(tool) for tool in tool_catalogue(principal=principal, tenant=tenant)]


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
        return HANDLERS[name](call)
    slug = slug_of(name)
    # The lookup runs in the caller's schema: another tenant's workflow is not found, whatever its name.
    if slug is None or not is_deployed(slug):
        raise UnknownTool(name)
    return workflow_tools.call_workflow_tool(call, slug)
