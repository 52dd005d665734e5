"""Tests of the engine's public surface: imports, hello world, registry, results and fast-path eligibility."""

from __future__ import annotations

import json
import subprocess
import sys
import timeit
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import definition_errors

import apps.engine as engine
from apps.engine import (
    CompiledWorkflow,
    Limits,
    NodeError,
    NodeRegistry,
    NodeType,
    RunResult,
    compile_workflow,
    default_registry,
)

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_import_does_not_pull_in_django() -> None:
    code = "import apps.engine, sys; assert 'django' not in sys.modules, 'django imported'"
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr


def test_public_names() -> None:
    for name in (
        "compile_workflow",
        "CompiledWorkflow",
        "RunResult",
        "Limits",
        "NodeRegistry",
        "NodeType",
        "default_registry",
        "EngineError",
        "DefinitionError",
        "InputError",
        "NodeError",
    ):
        assert hasattr(engine, name), name
    for error in (engine.DefinitionError, engine.InputError, engine.NodeError):
        assert issubclass(error, engine.EngineError)


def test_hello_world(hello_definition: dict[str, Any]) -> None:
    workflow = compile_workflow(hello_definition)
    assert isinstance(workflow, CompiledWorkflow)
    assert workflow.definition is hello_definition
    assert workflow.input_schema == hello_definition["inputs"]
    assert workflow.node_ids == ["greet"]
    workflow.validate_inputs({"name": "World"})
    result = workflow.execute({"name": "World"})
    assert isinstance(result, RunResult)
    assert result.status == "completed"
    assert result.outputs == {"message": "Hello, World!"}
    assert result.error is None
    assert result.recovery == []
    [step] = result.steps
    assert step["node"] == "greet"
    assert step["type"] == "template"
    assert step["status"] == "completed"
    assert step["attempts"] == 1
    assert step["output"] == "Hello, World!"
    assert step["error"] is None
    assert step["started_at"].endswith("Z") and "T" in step["started_at"]
    assert isinstance(step["duration_ms"], float)
    assert result.duration_ms >= step["duration_ms"]
    json.dumps(result.to_dict())


def test_compiled_workflow_is_reusable(hello_definition: dict[str, Any]) -> None:
    workflow = compile_workflow(hello_definition)
    assert workflow.execute({"name": "A"}).outputs == {"message": "Hello, A!"}
    assert workflow.execute({"name": "B"}).outputs == {"message": "Hello, B!"}


def test_compiled_workflow_is_thread_safe(hello_definition: dict[str, Any]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    workflow = compile_workflow(hello_definition)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: workflow.execute({"name": str(i)}).outputs["message"], range(200)))
    assert results == [f"Hello, {i}!" for i in range(200)]


def test_hello_world_execute_is_fast(hello_definition: dict[str, Any]) -> None:
    workflow = compile_workflow(hello_definition)
    inputs = {"name": "World"}
    number = 2000
    per_run = min(timeit.repeat(lambda: workflow.execute(inputs), number=number, repeat=3)) / number
    # Budget is 100 µs; the generous bound keeps this from flaking on a loaded machine.
    assert per_run < 500e-6, f"{per_run * 1e6:.1f} µs per execute"


def test_default_input_schema() -> None:
    workflow = compile_workflow({"nodes": [{"id": "a", "type": "transform", "config": {"expression": "`1`"}}]})
    assert workflow.input_schema == {"type": "object"}
    assert workflow.execute({}).outputs == {}


def test_node_ids_are_topological() -> None:
    definition = {
        "nodes": [
            {"id": "c", "type": "transform", "config": {"expression": "`3`"}},
            {"id": "b", "type": "transform", "config": {"expression": "`2`"}},
            {"id": "a", "type": "transform", "config": {"expression": "`1`"}},
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}],
    }
    assert compile_workflow(definition).node_ids == ["a", "b", "c"]


def test_is_inline_eligible(registry: NodeRegistry) -> None:
    pure_nodes = [
        {"id": "t", "type": "template", "config": {"template": "x"}},
        {"id": "x", "type": "transform", "config": {"expression": "inputs"}},
        {"id": "f", "type": "filter", "config": {"items": "`[1]`", "where": "@"}},
        {"id": "c", "type": "condition", "config": {"expression": "`true`"}},
        {"id": "m", "type": "merge", "config": {"from": ["t", "x"]}},
    ]
    edges = [{"from": "t", "to": "m"}, {"from": "x", "to": "m"}]
    assert compile_workflow({"nodes": pure_nodes, "edges": edges}).is_inline_eligible is True
    with_delay = [*pure_nodes, {"id": "d", "type": "delay", "config": {"seconds": 0}}]
    assert compile_workflow({"nodes": with_delay, "edges": edges}).is_inline_eligible is False
    with_io = [*pure_nodes, {"id": "io", "type": "io"}]
    assert compile_workflow({"nodes": with_io, "edges": edges}, registry=registry).is_inline_eligible is False
    with_retry = [{"id": "r", "type": "transform", "config": {"expression": "`1`"}, "retry": {"attempts": 3}}]
    assert compile_workflow({"nodes": with_retry}).is_inline_eligible is False


def test_cpu_heavy_pure_type_is_not_inline_eligible() -> None:
    registry = NodeRegistry([NodeType(name="chart", run=lambda config, ctx: "<svg/>", pure=True, cpu_light=False)])
    workflow = compile_workflow({"nodes": [{"id": "c", "type": "chart"}]}, registry=registry)
    assert workflow.is_inline_eligible is False


def test_registry_api() -> None:
    names = [node_type.name for node_type in default_registry.types()]
    assert names == [
        "chart",
        "condition",
        "dataset_query",
        "delay",
        "email",
        "filter",
        "http_request",
        "merge",
        "metrics",
        "notify",
        "subworkflow",
        "template",
        "transform",
    ]
    assert default_registry.get("template") is not None
    assert default_registry.get("fail") is None
    assert default_registry.get("nope") is None
    registry = default_registry.copy()
    custom = NodeType(name="double", run=lambda config, ctx: ctx.inputs["n"] * 2, pure=True)
    registry.register(custom)
    assert registry.get("double") is custom
    assert default_registry.get("double") is None
    with pytest.raises(ValueError, match="already registered"):
        registry.register(custom)
    registry.register(custom, replace=True)
    assert "double" in registry


def test_node_type_validation() -> None:
    with pytest.raises(ValueError, match="invalid node type name"):
        NodeType(name="Bad Name", run=lambda config, ctx: None)
    with pytest.raises(Exception, match="config_schema"):
        NodeType(name="bad-schema", run=lambda config, ctx: None, config_schema={"type": "nonsense"})
    with pytest.raises(TypeError):
        NodeType(name="not-callable", run="nope")  # type: ignore[arg-type]


def test_trusted_python_node_type_with_compile_hook() -> None:
    def compile_scale(config: dict[str, Any], ctx: engine.CompileContext) -> Any:
        if config["factor"] == 0:
            raise engine.ConfigError("factor", "must not be zero")
        return (ctx.expression("value", config["value"]), config["factor"])

    def run_scale(compiled: Any, ctx: engine.RunContext) -> Any:
        expression, factor = compiled
        value = expression.search(ctx.data)
        if not isinstance(value, (int, float)):
            raise NodeError("not_a_number", f"expected a number, got {value!r}")
        return value * factor

    registry = default_registry.copy()
    registry.register(
        NodeType(
            name="scale",
            config_schema={
                "type": "object",
                "required": ["value", "factor"],
                "properties": {"value": {"type": "string"}, "factor": {"type": "number"}},
            },
            compile=compile_scale,
            run=run_scale,
            pure=True,
        )
    )
    definition = {
        "nodes": [{"id": "s", "type": "scale", "config": {"value": "inputs.n", "factor": 3}}],
        "outputs": {"result": "nodes.s"},
    }
    assert compile_workflow(definition, registry=registry).execute({"n": 2}).outputs == {"result": 6}
    definition["nodes"][0]["config"]["factor"] = 0
    errors = definition_errors(definition, registry=registry)
    assert errors == [{"node": "s", "field": "nodes[0].config.factor", "message": "must not be zero"}]
    definition["nodes"][0]["config"] = {"value": "nodes.ghost", "factor": 1}
    [error] = definition_errors(definition, registry=registry)
    assert error["field"] == "nodes[0].config.value"
    assert "ghost" in error["message"]


def test_compile_hook_crash_is_reported_not_raised() -> None:
    def broken(config: dict[str, Any], ctx: engine.CompileContext) -> Any:
        raise RuntimeError("bug in operator code")

    registry = NodeRegistry([NodeType(name="broken", run=lambda c, x: None, compile=broken)])
    [error] = definition_errors({"nodes": [{"id": "b", "type": "broken"}]}, registry=registry)
    assert error["field"] == "nodes[0].config"
    assert "bug in operator code" in error["message"]


def test_limits_defaults() -> None:
    limits = Limits()
    assert limits.max_nodes == 200
    assert limits.max_payload_bytes == 1_000_000
    assert limits.max_run_seconds == 300
    assert limits.max_delay_seconds == 60
    assert limits.max_fanout == 1000
    assert limits.max_http_response_bytes == 1_000_000
    assert limits.allow_private_network is False
    assert limits.http_allowed_hosts == ()
    assert limits.max_subworkflow_depth == 3
    assert limits.max_parallel_nodes == 8


def test_limits_normalise_allowed_hosts_and_reject_nonsense() -> None:
    assert Limits(http_allowed_hosts=["API.Example.com.", " hooks.example.com"]).http_allowed_hosts == (
        "api.example.com",
        "hooks.example.com",
    )
    assert Limits(http_allowed_hosts="one.example").http_allowed_hosts == ("one.example",)
    with pytest.raises(ValueError, match="max_parallel_nodes"):
        Limits(max_parallel_nodes=0)
    with pytest.raises(ValueError, match="max_subworkflow_depth"):
        Limits(max_subworkflow_depth=-1)


def test_error_string_is_one_line_summary() -> None:
    with pytest.raises(engine.DefinitionError) as info:
        compile_workflow({"nodes": [{"id": "A!", "type": "nope"}], "edges": "x"})
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("invalid workflow definition (")
    assert "nodes[0].type" in text
