"""The MCP server (SDK low-level `Server`): per-caller tool lists, tool calls, progress while a run is waited on.

The handlers are async and never touch the ORM on the event loop: every database call runs through
`in_tenant`, on the request's own thread (asgi.py opens a ThreadSensitiveContext per request), with the
connection switched to the caller's tenant schema and released afterwards.
"""

import asyncio
import logging
from contextlib import contextmanager
from typing import Any

import mcp_types as types
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from mcp.server import Server
from mcp.server.caching import CacheHint
from mcp.shared.exceptions import MCPError

from apps.audit.context import audit_context, client_ip, request_id_from
from apps.core.principal import Principal
from apps.events.origin import event_origin
from apps.mcp_bridge import tools
from apps.mcp_bridge.audit import record_call
from apps.mcp_bridge.results import PendingRun, ToolResult, UnknownTool, failure
from apps.runs.models import TERMINAL_STATUSES
from apps.runs.selectors import run_get
from apps.runs.waits import CAPPED, wait_slot_take
from apps.tenants.connection import use_tenant
from apps.tenants.models import Tenant

logger = logging.getLogger(__name__)

PRINCIPAL_KEY = "nexus.principal"
TENANT_KEY = "nexus.tenant"
SESSION_HEADER = "x-nexus-session"
_POLL_FIRST_S = 0.05
_POLL_MAX_S = 0.5

INSTRUCTIONS = (
    "Nexus runs this tenant's workflows. Each workflow deployed to production is a tool named workflow_<slug> whose "
    "arguments are the workflow's inputs and whose structured result is its outputs. Platform tools list and "
    "describe workflows, run them (run_workflow, wait=false for a run id at once), follow and cancel executions, "
    "query datasets, compute metrics, render charts and email reports. A refused or failing call is a tool error "
    "with the reason; send X-Nexus-Session: ses_… to bind runs to a session."
)


def _in_schema(tenant: Tenant, fn, kwargs: dict[str, Any]):
    use_tenant(tenant)
    try:
        return fn(**kwargs)
    finally:
        # The ASGI process keeps no connection between calls (asgi.py sets CONN_MAX_AGE=0): this releases it.
        close_old_connections()


async def in_tenant(tenant: Tenant, fn, /, **kwargs):
    """Run `fn(**kwargs)` off the event loop, in `tenant`'s schema."""
    return await sync_to_async(_in_schema, thread_sensitive=True)(tenant, fn, kwargs)


def _caller(ctx) -> tuple[Principal, Tenant]:
    scope = ctx.request.scope if ctx.request is not None else {}
    principal, tenant = scope.get(PRINCIPAL_KEY), scope.get(TENANT_KEY)
    if principal is None or tenant is None:  # asgi.py answers 401 before this; never serve an anonymous call
        raise MCPError(code=types.INVALID_REQUEST, message="not authenticated")
    return principal, tenant


def _session_id(ctx) -> str | None:
    value = ctx.request.headers.get(SESSION_HEADER, "").strip() if ctx.request is not None else ""
    return value or None


@contextmanager
def _door(ctx, session_id: str | None):
    """Declare this door for what the call causes: events carry source `mcp` and the session, audit rows channel
    `mcp`, the client's address and the request id (contextvars: they follow the call into its thread)."""
    request = ctx.request
    peer = request.client.host if request is not None and request.client else None
    # Every X-Forwarded-For line: `.get` would return the first, which is the one the client wrote itself.
    forwarded_for = request.headers.getlist("x-forwarded-for") if request is not None else []
    request_id = request.headers.get("x-request-id") if request is not None else None
    with (
        event_origin(source="mcp", session_id=session_id),
        audit_context(channel="mcp", ip=client_ip(peer, forwarded_for), request_id=request_id_from(request_id)),
    ):
        yield


async def list_tools(ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    principal, tenant = _caller(ctx)
    listed = await in_tenant(tenant, tools.tool_list, principal=principal, tenant=tenant)
    return types.ListToolsResult(tools=listed)


def _poll(*, principal: Principal, tenant: Tenant, run_id: str):
    return run_get(principal=principal, tenant_id=tenant.pk, run_id=run_id)


async def _wait(ctx, principal: Principal, tenant: Tenant, pending: PendingRun) -> ToolResult:
    """Wait on a run if the tenant has a wait slot free (apps/runs/waits.py); otherwise answer at once with
    the run as it is. Polling from the event loop holds no thread, so only the tenant's cap applies."""
    slot = await sync_to_async(wait_slot_take, thread_sensitive=False)(tenant_id=tenant.pk, in_process=False)
    if not slot.taken:
        execution = await in_tenant(tenant, _poll, principal=principal, tenant=tenant, run_id=pending.run_id)
        return pending.finish(execution, wait=CAPPED)
    try:
        return await _poll_until_done(ctx, principal, tenant, pending)
    finally:
        await sync_to_async(slot.release, thread_sensitive=False)()


async def _poll_until_done(ctx, principal: Principal, tenant: Tenant, pending: PendingRun) -> ToolResult:
    """Poll a run a worker executes until it ends or the wait budget is spent, reporting each finished node as
    progress (sent only when the caller gave a progress token). The run keeps going if the caller leaves."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.NEXUS_WAIT_TIMEOUT_S
    delay, reported = _POLL_FIRST_S, -1
    while True:
        execution = await in_tenant(tenant, _poll, principal=principal, tenant=tenant, run_id=pending.run_id)
        steps = execution.steps or []
        if len(steps) != reported:
            reported = len(steps)
            last = steps[-1] if steps else None
            message = f"{execution.status}: node '{last['node']}' {last['status']}" if last else execution.status
            await ctx.session.report_progress(float(reported), float(pending.total_nodes) or None, message)
        remaining = deadline - loop.time()
        if execution.status in TERMINAL_STATUSES or remaining <= 0:
            return pending.finish(execution)
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 2, _POLL_MAX_S)


def _as_mcp_result(result: ToolResult) -> types.CallToolResult:
    data: dict[str, Any] = {"content": [types.TextContent(type="text", text=result.text)], "is_error": result.is_error}
    if result.structured is not None:
        data["structured_content"] = result.structured
    if result.meta:
        data["_meta"] = result.meta
    return types.CallToolResult(**data)


async def call_tool(ctx, params: types.CallToolRequestParams) -> types.CallToolResult:
    principal, tenant = _caller(ctx)
    name, session_id = params.name, _session_id(ctx)
    with _door(ctx, session_id):  # the `tool.called` row too carries the client's address and the request id
        try:
            outcome = await in_tenant(
                tenant,
                tools.call_tool,
                principal=principal,
                tenant=tenant,
                name=name,
                arguments=params.arguments,
                session_id=session_id,
            )
            if isinstance(outcome, PendingRun):
                outcome = await _wait(ctx, principal, tenant, outcome)
        except UnknownTool:
            await record_call(principal=principal, tool=name, outcome="unknown_tool", error_code="unknown_tool")
            raise MCPError(code=types.INVALID_PARAMS, message=f"Unknown tool: {name}") from None
        except Exception:
            # The connection stays usable: an unexpected failure is this call's error, logged with its traceback.
            logger.exception("MCP tool %s failed for %s in tenant %s", name, principal.actor, tenant.slug)
            outcome = failure("the tool failed unexpectedly; the error is logged on the server", code="internal_error")
        await record_call(
            principal=principal,
            tool=name,
            outcome="tool_error" if outcome.is_error else "ok",
            run_id=outcome.run_id,
            error_code=outcome.error_code,
        )
    return _as_mcp_result(outcome)


def _no_header_schema(name: str) -> None:
    """2026-07-28 `Mcp-Param-*` header validation: no tool declares header-mirrored parameters, so there is
    nothing to check; saying so keeps the SDK from running tools/list before every tools/call."""
    return


def build_server() -> Server:
    return Server(
        "nexus",
        version=settings.NEXUS_VERSION,
        title="Nexus",
        instructions=INSTRUCTIONS,
        # Tool lists differ per caller and change with every deployment: never cache them across callers.
        cache_hints={"tools/list": CacheHint(ttl_ms=0, scope="private")},
        get_tool_input_schema=_no_header_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )
