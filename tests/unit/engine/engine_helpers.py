"""Helpers shared by the workflow engine unit tests: a test registry and run/compile shortcuts."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from apps.engine import (
    CompiledWorkflow,
    DefinitionError,
    NodeError,
    NodeRegistry,
    NodeType,
    RunContext,
    compile_workflow,
    default_registry,
)


class FlakyCalls(Counter):
    """Attempts per node id, so tests can assert how often a node ran."""


def make_test_registry(calls: FlakyCalls) -> NodeRegistry:
    """Default node types plus `flaky` (fails N times), `crash` (raises ZeroDivisionError) and `io`."""

    def run_flaky(config: dict[str, Any], ctx: RunContext) -> Any:
        calls[ctx.node_id] += 1
        if calls[ctx.node_id] <= config.get("fail_times", 1_000_000):
            raise NodeError(config.get("code", "boom"), f"attempt {calls[ctx.node_id]} failed")
        return config.get("output", "ok")

    def run_crash(config: dict[str, Any], ctx: RunContext) -> Any:
        calls[ctx.node_id] += 1
        return 1 / 0

    def run_io(config: dict[str, Any], ctx: RunContext) -> Any:
        return {"fetched": True}

    registry = default_registry.copy()
    registry.register(
        NodeType(
            name="flaky",
            run=run_flaky,
            config_schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "fail_times": {"type": "integer", "minimum": 0},
                    "code": {"type": "string"},
                    "output": {},
                },
            },
            pure=True,
        )
    )
    registry.register(NodeType(name="crash", run=run_crash, pure=True))
    registry.register(NodeType(name="io", run=run_io, pure=False))
    return registry


def definition_errors(definition: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Compile a definition that must be rejected and return its error list."""
    with pytest.raises(DefinitionError) as info:
        compile_workflow(definition, **kwargs)
    return info.value.errors


def run(definition: dict[str, Any], inputs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Compile with the given registry/limits and execute once."""
    compile_kwargs = {key: kwargs.pop(key) for key in ("registry", "limits") if key in kwargs}
    workflow: CompiledWorkflow = compile_workflow(definition, **compile_kwargs)
    return workflow.execute(inputs if inputs is not None else {}, **kwargs)


def by_node(result: Any) -> dict[str, dict[str, Any]]:
    return {step["node"]: step for step in result.steps}
