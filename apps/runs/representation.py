"""The one JSON shape of an execution, shared by every channel (API, CLI, and later events and MCP)."""

from typing import Any

from apps.core.dates import iso_utc
from apps.runs.models import Execution


def execution_data(execution: Execution, *, with_steps: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": execution.id,
        "workflow_id": execution.workflow_id,
        "workflow": execution.workflow_slug,
        "version_id": execution.version_id,
        "version": execution.version_number,
        "environment": execution.environment or None,
        "status": execution.status,
        "channel": execution.channel,
        "actor": execution.actor,
        "session": execution.session_id,
        "parent": execution.parent_id,
        "inputs": execution.inputs,
        "outputs": execution.outputs,
        "error": execution.error,
        "recovery": execution.recovery,
        "inline": execution.inline,
        "attempt": execution.attempt,
        "created_at": iso_utc(execution.created_at),
        "started_at": iso_utc(execution.started_at),
        "finished_at": iso_utc(execution.finished_at),
        "duration_ms": execution.duration_ms,
    }
    if with_steps:
        data["steps"] = execution.steps
    return data
