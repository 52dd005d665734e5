"""What calling a tool gives back, in plain data (server.py turns these into MCP types); what tools there are is
apps/catalogue's."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.core.errors import ApplicationError
from apps.core.principal import Principal
from apps.tenants.models import Tenant


class UnknownTool(Exception):
    """No such tool for this caller: answered as a protocol error, exactly like a name nobody ever used."""


@dataclass(frozen=True)
class Call:
    principal: Principal
    tenant: Tenant
    arguments: dict[str, Any]
    session_id: str | None = None


@dataclass(frozen=True)
class ToolResult:
    structured: dict[str, Any] | None
    text: str
    is_error: bool = False
    run_id: str | None = None
    error_code: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class PendingRun:
    """A run handed to a worker while the caller waits: server.py polls it (with progress) and then calls `finish`."""

    run_id: str
    total_nodes: int
    finish: Callable[..., ToolResult]  # finish(execution, wait=None | "capped")


def ok(structured: dict[str, Any], *, note: str | None = None, run_id: str | None = None, meta=None) -> ToolResult:
    """A success: the structured content, its JSON as the first text block (what text-only clients read)."""
    text = json.dumps(structured, default=str)
    if note:
        text = f"{text}\n\n{note}"
    return ToolResult(structured=structured, text=text, run_id=run_id, meta=meta)


def failure(detail: str, *, code: str, fields: dict[str, Any] | None = None, run_id: str | None = None) -> ToolResult:
    lines = [f"{detail} ({code})"]
    lines += [f"  {name}: {reason}" for name, reason in (fields or {}).items()]
    return ToolResult(structured=None, text="\n".join(lines), is_error=True, run_id=run_id, error_code=code)


def error_result(error: ApplicationError, *, run_id: str | None = None) -> ToolResult:
    """A domain error as a tool error: the same detail, code and fields the REST API would answer with."""
    return failure(error.detail, code=error.code, fields=error.fields, run_id=run_id)
