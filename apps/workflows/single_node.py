"""One engine node run on a caller's data, outside any workflow run: the node's own validation, limits and
error codes apply exactly as inside a workflow, and nothing is recorded as an execution.

The reports services (apps/reports) use it for metrics, charts and emailed reports asked for directly, e.g. by
an MCP agent: they check access and record what they changed; this module only runs the node.
"""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connections

from apps.core.errors import ApplicationError
from apps.engine import CompiledWorkflow
from apps.workflows.compiled import compile_definition

_NODE = "node"
_CONFIG_FIELD = "definition.nodes[0].config."


class NodeFailed(ApplicationError):
    """The node ran and failed: `code` is the node's own error code (or the run's status), `detail` its message."""

    status = 422
    code = "node_failed"


@lru_cache(maxsize=256)
def _compiled(node_type: str, config_json: str) -> CompiledWorkflow:
    """Compiled one-node definitions, cached by their config: repeated calls skip validation and compilation."""
    return compile_definition(
        {
            "inputs": {"type": "object"},
            "nodes": [{"id": _NODE, "type": node_type, "config": json.loads(config_json)}],
            "edges": [],
            "outputs": {"result": f"nodes.{_NODE}"},
        }
    )


@contextmanager
def _worker_connection() -> Iterator[None]:
    """A node the engine hands to one of its own threads gets a connection there: close it when the node ends."""
    try:
        yield
    finally:
        connections.close_all()


def node_call(*, node_type: str, config: dict[str, Any], inputs: dict[str, Any], ports: dict | None = None) -> Any:
    """Run one node of `node_type` with `config` on `inputs` (its expressions read `inputs.…`) and return its
    output. Raises ValidationFailed naming the bad config fields (as the caller's argument names: `kind`, not
    `definition.nodes[0].config.kind`), NodeFailed with the node's code when it fails."""
    try:
        compiled = _compiled(node_type, json.dumps(config, sort_keys=True))
    except ApplicationError as error:
        error.fields = {name.replace(_CONFIG_FIELD, ""): reason for name, reason in error.fields.items()}
        raise
    result = compiled.execute(
        inputs,
        deadline=time.monotonic() + settings.NEXUS_WAIT_TIMEOUT_S,
        ports=ports or {},
        worker_scope=_worker_connection,
    )
    if result.status != "completed":
        failure = result.error or {}
        raise NodeFailed(failure.get("message") or result.status, code=failure.get("code") or result.status)
    return result.outputs.get("result")
