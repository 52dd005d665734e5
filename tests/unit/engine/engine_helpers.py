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


# ------------------------------------------------------------------------------------------- ports


class FakeArtifacts:
    """Keeps stored artifacts in memory."""

    def __init__(self) -> None:
        self.stored: dict[str, dict[str, Any]] = {}

    def store(self, *, name: str, content_type: str, data: bytes) -> dict[str, Any]:
        artifact_id = f"art_{len(self.stored) + 1}"
        self.stored[artifact_id] = {"name": name, "content_type": content_type, "data": data}
        return {"id": artifact_id, "name": name, "content_type": content_type, "size": len(data)}


class FakeDatasets:
    """Serves in-memory tables; records every query; filters with eq/gt only (enough for the tests)."""

    def __init__(self, tables: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.tables = tables or {}
        self.queries: list[dict[str, Any]] = []

    def query(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.queries.append(kwargs)
        rows = self.tables.get(kwargs["dataset"])
        if rows is None:
            raise NodeError("dataset_not_found", f"dataset {kwargs['dataset']!r} does not exist", retryable=False)
        for item in kwargs["filters"]:
            if item["op"] == "eq":
                rows = [row for row in rows if row.get(item["field"]) == item["value"]]
            elif item["op"] == "gt":
                rows = [row for row in rows if row.get(item["field"]) > item["value"]]
        for key in reversed(kwargs["order_by"]):
            rows = sorted(rows, key=lambda row, key=key: row[key["field"]], reverse=key["desc"])
        return rows[: kwargs["limit"]]


class FakeMail:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, **kwargs: Any) -> dict[str, Any]:
        self.sent.append(kwargs)
        return {"message_id": f"<m{len(self.sent)}@test>", "accepted": [*kwargs["to"], *kwargs["cc"]]}


class FakeEvents:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, *, type: str, data: dict[str, Any]) -> dict[str, Any]:
        self.published.append({"type": type, "data": data})
        return {"id": f"evt_{len(self.published)}", "type": type}


class FakeWorkflows:
    """Runs registered child definitions with the real engine, passing the ports and depth down."""

    def __init__(self, definitions: dict[str, dict[str, Any]] | None = None, ports: dict[str, Any] | None = None) -> None:
        self.definitions = definitions or {}
        self.ports = ports if ports is not None else {}
        self.calls: list[dict[str, Any]] = []

    def run(
        self,
        *,
        workflow: str,
        inputs: dict[str, Any],
        environment: str,
        depth: int,
        deadline: float | None = None,
        threads: Any = None,
    ) -> dict[str, Any]:
        self.calls.append({"workflow": workflow, "inputs": inputs, "environment": environment, "depth": depth})
        definition = self.definitions.get(workflow)
        if definition is None:
            raise NodeError("workflow_not_found", f"workflow {workflow!r} does not exist", retryable=False)
        result = compile_workflow(definition).execute(
            inputs, ports={**self.ports, "workflows": self}, depth=depth, deadline=deadline, threads=threads
        )
        return {
            "execution_id": f"run_{len(self.calls)}",
            "status": result.status,
            "outputs": result.outputs,
            "error": result.error,
        }


def fake_ports(**overrides: Any) -> dict[str, Any]:
    ports: dict[str, Any] = {
        "artifacts": FakeArtifacts(),
        "datasets": FakeDatasets(),
        "mail": FakeMail(),
        "events": FakeEvents(),
        "workflows": FakeWorkflows(),
    }
    ports.update(overrides)
    return ports
