"""The one place every MCP tool call is recorded. There is no audit app yet: this logs, and the audit hooks in here."""

import logging

from apps.core.principal import Principal

logger = logging.getLogger("nexus.mcp.audit")


def record_call(
    *, principal: Principal, tool: str, outcome: str, run_id: str | None = None, error_code: str | None = None
) -> None:
    """One line per tool call. `outcome` is "ok", "tool_error" or "unknown_tool"; `error_code` the domain code.

    Called for every call, refused ones included, after the call: the audit (apps/audit, later) replaces the
    body with an append-only row carrying `tenant_id`, actor, tool, outcome and run id.
    """
    logger.info(
        "mcp.tool_called tenant=%s actor=%s tool=%s outcome=%s run=%s code=%s",
        principal.tenant_slug,
        principal.actor,
        tool,
        outcome,
        run_id or "-",
        error_code or "-",
    )
