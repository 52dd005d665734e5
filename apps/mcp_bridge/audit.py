"""The one place every MCP tool call is recorded: an append-only audit row (`tool.called`) per call."""

import logging

from asgiref.sync import sync_to_async
from django.db import connection

from apps.audit.models import Outcome
from apps.audit.recorder import audit_record
from apps.core.principal import Principal

logger = logging.getLogger("nexus.mcp.audit")

_OUTCOMES = {"ok": "success", "tool_error": "error", "unknown_tool": "error"}


def _record(*, principal: Principal, tool: str, outcome: str, run_id: str | None, error_code: str | None) -> None:
    try:
        audit_outcome = Outcome.DENIED if error_code in ("permission_denied", "quota_exceeded") else _OUTCOMES[outcome]
        audit_record(
            action="tool.called",
            tenant_id=principal.tenant_id,
            principal=principal,
            channel="mcp",
            target=tool,
            outcome=audit_outcome,
            details={"run_id": run_id, "code": error_code},
        )
    finally:
        connection.close()  # a pool thread, not a request: nothing else would ever close this connection


async def record_call(
    *, principal: Principal, tool: str, outcome: str, run_id: str | None = None, error_code: str | None = None
) -> None:
    """Record a tool call after it ran (refused ones included). `outcome` is "ok", "tool_error" or "unknown_tool".

    What the call changed is audited by the services it called, in their own transactions; this row says
    which agent asked for what through MCP. A failure to record is logged, never turned into a tool error.
    """
    try:
        await sync_to_async(_record, thread_sensitive=False)(
            principal=principal, tool=tool, outcome=outcome, run_id=run_id, error_code=error_code
        )
    except Exception:
        logger.exception("could not audit MCP call %s by %s", tool, principal.actor)
