"""Tests of execution semantics: branching, skips, retries, recovery, deadlines, cancellation, limits."""

from __future__ import annotations

import time
from typing import Any

from engine_helpers import FlakyCalls, by_node, run

from apps.engine import Limits, NodeRegistry, compile_workflow


def transform(node_id: str, expression: str = "`1`", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "config": {"expression": expression}, **extra}


def statuses(result: Any) -> dict[str, str]:
    return {step["node"]: step["status"] for step in result.steps}


# ------------------------------------------------------------------------------------- branching


BRANCHING = {
    "inputs": {"type": "object", "properties": {"n": {"type": "number"}}, "required": ["n"]},
    "nodes": [
        {"id": "check", "type": "condition", "config": {"expression": "inputs.n > `10`"}},
        {"id": "big", "type": "template", "config": {"template": "big {{ inputs.n }}"}},
        {"id": "small", "type": "template", "config": {"template": "small {{ inputs.n }}"}},
        {"id": "big_more", "type": "transform", "config": {"expression": "nodes.big"}},
        {"id": "join", "type": "merge", "config": {"from": ["big_more", "small"], "mode": "list"}},
    ],
    "edges": [
        {"from": "check", "to": "big", "when": "nodes.check.value"},
        {"from": "check", "to": "small", "when": "!(nodes.check.value)"},
        {"from": "big", "to": "big_more"},
        {"from": "big_more", "to": "join"},
        {"from": "small", "to": "join"},
    ],
    "outputs": {"big": "nodes.big", "small": "nodes.small", "joined": "nodes.join"},
}


def test_when_branching_true() -> None:
    result = run(BRANCHING, {"n": 20})
    assert result.status == "completed"
    assert statuses(result) == {
        "check": "completed",
        "big": "completed",
        "small": "skipped",
        "big_more": "completed",
        "join": "completed",
    }
    assert result.outputs == {"big": "big 20", "small": None, "joined": ["big 20", None]}


def test_when_branching_false_propagates_skips() -> None:
    result = run(BRANCHING, {"n": 1})
    assert statuses(result) == {
        "check": "completed",
        "big": "skipped",
        "small": "completed",
        "big_more": "skipped",
        "join": "completed",
    }
    assert result.outputs == {"big": None, "small": "small 1", "joined": [None, "small 1"]}
    skipped = by_node(result)["big"]
    assert skipped["attempts"] == 0 and skipped["output"] is None and skipped["duration_ms"] == 0.0


def test_node_is_skipped_when_all_incoming_edges_are_inactive() -> None:
    definition = {
        "nodes": [transform("a"), transform("b"), transform("c"), transform("d")],
        "edges": [
            {"from": "a", "to": "c", "when": "`false`"},
            {"from": "b", "to": "c", "when": "`null`"},
            {"from": "c", "to": "d"},
        ],
        "outputs": {"d": "nodes.d"},
    }
    result = run(definition)
    assert result.status == "completed"
    assert statuses(result) == {"a": "completed", "b": "completed", "c": "skipped", "d": "skipped"}
    assert result.outputs == {"d": None}


def test_when_sees_the_source_output() -> None:
    definition = {
        "nodes": [transform("a", "inputs.items"), transform("b", "`2`")],
        "edges": [{"from": "a", "to": "b", "when": "length(nodes.a) > `1`"}],
    }
    assert statuses(run(definition, {"items": [1, 2]}))["b"] == "completed"
    assert statuses(run(definition, {"items": [1]}))["b"] == "skipped"


def test_when_runtime_error_fails_the_run() -> None:
    definition = {
        "nodes": [transform("a", "`5`"), transform("b")],
        "edges": [{"from": "a", "to": "b", "when": "length(nodes.a)"}],
    }
    result = run(definition)
    assert result.status == "failed"
    assert result.error["node"] == "a"
    assert result.error["code"] == "expression_error"
    assert result.error["message"].startswith("edge a -> b:")


def test_execution_order_is_deterministic_and_topological() -> None:
    definition = {
        "nodes": [transform("z"), transform("y"), transform("x"), transform("w")],
        "edges": [{"from": "z", "to": "w"}, {"from": "y", "to": "w"}, {"from": "x", "to": "y"}],
    }
    orders = {tuple(step["node"] for step in run(definition).steps) for _ in range(5)}
    assert orders == {("z", "x", "y", "w")}


def test_on_step_is_called_after_each_node() -> None:
    seen: list[dict[str, Any]] = []
    result = run(BRANCHING, {"n": 20}, on_step=seen.append)
    assert seen == result.steps
    # A branch is marked skipped as soon as its condition is known, before its sibling runs.
    assert [step["node"] for step in seen] == ["check", "small", "big", "big_more", "join"]


# ----------------------------------------------------------------------------------------- retries


def test_retry_counts_attempts(registry: NodeRegistry, calls: FlakyCalls) -> None:
    definition = {
        "nodes": [
            {
                "id": "f",
                "type": "flaky",
                "config": {"fail_times": 2, "output": "done"},
                "retry": {"attempts": 3},
            }
        ],
        "outputs": {"out": "nodes.f"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed"
    assert result.outputs == {"out": "done"}
    assert by_node(result)["f"]["attempts"] == 3
    assert calls["f"] == 3


def test_retry_exhausted_fails(registry: NodeRegistry, calls: FlakyCalls) -> None:
    definition = {"nodes": [{"id": "f", "type": "flaky", "config": {"code": "upstream_down"}, "retry": {"attempts": 4}}]}
    result = run(definition, registry=registry)
    assert result.status == "failed"
    assert result.outputs == {}
    assert result.error == {"node": "f", "code": "upstream_down", "message": "attempt 4 failed"}
    step = by_node(result)["f"]
    assert step["status"] == "failed" and step["attempts"] == 4
    assert step["error"] == {"code": "upstream_down", "message": "attempt 4 failed"}
    assert calls["f"] == 4


def test_retry_backoff_sleeps(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {
                "id": "f",
                "type": "flaky",
                "config": {"fail_times": 2},
                "retry": {"attempts": 3, "backoff_s": 0.02, "multiplier": 2},
            }
        ]
    }
    started = time.monotonic()
    assert run(definition, registry=registry).status == "completed"
    assert time.monotonic() - started >= 0.06


def test_backoff_is_capped_by_the_deadline(registry: NodeRegistry) -> None:
    definition = {"nodes": [{"id": "f", "type": "flaky", "retry": {"attempts": 3, "backoff_s": 30}}]}
    started = time.monotonic()
    result = run(definition, registry=registry, deadline=time.monotonic() + 0.1)
    assert time.monotonic() - started < 1
    assert result.status == "timed_out"
    assert result.error["code"] == "timeout"


def test_deterministic_errors_are_not_retried(calls: FlakyCalls) -> None:
    definition = {
        "nodes": [
            {
                "id": "t",
                "type": "template",
                "config": {"template": "{{ inputs.nope }}"},
                "retry": {"attempts": 5},
            }
        ]
    }
    result = run(definition)
    assert result.status == "failed"
    assert by_node(result)["t"]["attempts"] == 1


def test_unexpected_exceptions_become_node_errors(registry: NodeRegistry) -> None:
    result = run({"nodes": [{"id": "c", "type": "crash", "retry": {"attempts": 2}}]}, registry=registry)
    assert result.status == "failed"
    assert result.error == {
        "node": "c",
        "code": "node_error",
        "message": "ZeroDivisionError: division by zero",
    }
    assert by_node(result)["c"]["attempts"] == 2
    assert "Traceback" not in str(result.to_dict())


# ---------------------------------------------------------------------------------------- recovery


def test_on_error_continue(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {"id": "f", "type": "flaky", "on_error": "continue"},
            transform("after", "[nodes.f, `1`]"),
        ],
        "edges": [{"from": "f", "to": "after"}],
        "outputs": {"f": "nodes.f", "after": "nodes.after"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"f": None, "after": [None, 1]}
    assert result.error is None
    assert result.recovery == [
        {
            "node": "f",
            "action": "continue",
            "fallback": None,
            "error": {"code": "boom", "message": "attempt 1 failed"},
        }
    ]
    assert statuses(result) == {"f": "recovered", "after": "completed"}


def test_fallback_replaces_output(registry: NodeRegistry, calls: FlakyCalls) -> None:
    definition = {
        "nodes": [
            {"id": "primary", "type": "flaky", "retry": {"attempts": 2}, "on_error": {"fallback": "backup"}},
            {"id": "backup", "type": "template", "config": {"template": "cached for {{ inputs.who }}"}},
            {"id": "use", "type": "template", "config": {"template": "got: {{ nodes.primary }}"}},
        ],
        "edges": [{"from": "primary", "to": "use"}],
        "outputs": {"primary": "nodes.primary", "backup": "nodes.backup", "use": "nodes.use"},
    }
    result = run(definition, {"who": "ada"}, registry=registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {
        "primary": "cached for ada",
        "backup": "cached for ada",
        "use": "got: cached for ada",
    }
    assert result.recovery == [
        {
            "node": "primary",
            "action": "fallback",
            "fallback": "backup",
            "error": {"code": "boom", "message": "attempt 2 failed"},
        }
    ]
    steps = by_node(result)
    assert steps["primary"]["status"] == "recovered" and steps["primary"]["attempts"] == 2
    assert steps["backup"]["status"] == "completed"
    assert calls["primary"] == 2


def test_fallback_is_skipped_when_not_needed(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {
                "id": "primary",
                "type": "flaky",
                "config": {"fail_times": 0},
                "on_error": {"fallback": "backup"},
            },
            {"id": "backup", "type": "template", "config": {"template": "cached"}},
            {"id": "after_backup", "type": "template", "config": {"template": "x"}},
        ],
        "edges": [{"from": "backup", "to": "after_backup"}],
        "outputs": {"primary": "nodes.primary", "backup": "nodes.backup"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed"
    assert result.recovery == []
    assert result.outputs == {"primary": "ok", "backup": None}
    assert statuses(result) == {"primary": "completed", "backup": "skipped", "after_backup": "skipped"}


def test_fallback_branch_runs_on_failure(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {"id": "primary", "type": "flaky", "on_error": {"fallback": "backup"}},
            {"id": "backup", "type": "template", "config": {"template": "cached"}},
            {"id": "notify", "type": "template", "config": {"template": "fell back to {{ nodes.backup }}"}},
        ],
        "edges": [{"from": "backup", "to": "notify"}],
        "outputs": {"notify": "nodes.notify"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"notify": "fell back to cached"}


def test_failing_fallback_fails_the_run(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {"id": "primary", "type": "flaky", "on_error": {"fallback": "backup"}},
            {"id": "backup", "type": "flaky", "config": {"code": "also_down"}},
            transform("after"),
        ],
        "edges": [{"from": "primary", "to": "after"}],
    }
    result = run(definition, registry=registry)
    assert result.status == "failed"
    assert result.error == {"node": "backup", "code": "also_down", "message": "attempt 1 failed"}
    assert statuses(result) == {"backup": "failed", "primary": "failed"}


def test_fallback_chain(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {"id": "a", "type": "flaky", "on_error": {"fallback": "b"}},
            {"id": "b", "type": "flaky", "on_error": {"fallback": "c"}},
            {"id": "c", "type": "transform", "config": {"expression": "'last resort'"}},
        ],
        "outputs": {"a": "nodes.a"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"a": "last resort"}
    assert [entry["node"] for entry in result.recovery] == ["b", "a"]


def test_failure_stops_the_run(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [{"id": "f", "type": "flaky"}, transform("after"), transform("independent")],
        "edges": [{"from": "f", "to": "after"}],
    }
    result = run(definition, registry=registry)
    assert result.status == "failed"
    assert "after" not in statuses(result)


# ------------------------------------------------------------------------- deadlines and cancelling


def delays(*seconds: float) -> dict[str, Any]:
    nodes = [{"id": f"d{i}", "type": "delay", "config": {"seconds": s}} for i, s in enumerate(seconds)]
    edges = [{"from": f"d{i}", "to": f"d{i + 1}"} for i in range(len(seconds) - 1)]
    return {"nodes": nodes, "edges": edges, "outputs": {"last": f"nodes.d{len(seconds) - 1}"}}


def test_deadline_interrupts_a_delay() -> None:
    started = time.monotonic()
    result = run(delays(0.3), deadline=time.monotonic() + 0.05)
    elapsed = time.monotonic() - started
    assert result.status == "timed_out"
    assert result.outputs == {}
    assert result.error == {"node": "d0", "code": "timeout", "message": "run exceeded its deadline"}
    assert elapsed < 0.25
    step = by_node(result)["d0"]
    assert step["status"] == "failed" and step["error"]["code"] == "timeout"


def test_deadline_checked_between_nodes() -> None:
    result = run(delays(0.05, 0.05, 0.05), deadline=time.monotonic() + 0.07)
    assert result.status == "timed_out"
    assert statuses(result)["d0"] == "completed"
    assert "d2" not in statuses(result)


def test_deadline_already_passed() -> None:
    definition = {"nodes": [transform("a")]}
    result = run(definition, deadline=time.monotonic() - 1)
    assert result.status == "timed_out"
    assert result.steps == []
    assert result.error == {"node": None, "code": "timeout", "message": "run exceeded its deadline"}


def test_max_run_seconds_caps_the_deadline() -> None:
    result = run(delays(0.3), limits=Limits(max_run_seconds=0.05))
    assert result.status == "timed_out"


def test_node_timeout_is_a_recoverable_node_failure() -> None:
    definition = {
        "nodes": [
            {
                "id": "slow",
                "type": "delay",
                "config": {"seconds": 0.3},
                "timeout_s": 0.05,
                "on_error": "continue",
            }
        ],
        "outputs": {"slow": "nodes.slow"},
    }
    started = time.monotonic()
    result = run(definition)
    assert time.monotonic() - started < 0.25
    assert result.status == "completed_with_recovery"
    assert result.recovery[0]["error"]["code"] == "timeout"


def test_node_timeout_without_recovery() -> None:
    definition = {"nodes": [{"id": "slow", "type": "delay", "config": {"seconds": 0.3}, "timeout_s": 0.05}]}
    result = run(definition)
    assert result.status == "failed"
    assert result.error["code"] == "timeout"
    assert result.error["node"] == "slow"


def test_cancellation_during_a_delay() -> None:
    cancel_at = time.monotonic() + 0.05
    started = time.monotonic()
    result = run(delays(0.3, 0.3), should_cancel=lambda: time.monotonic() > cancel_at)
    assert time.monotonic() - started < 0.25
    assert result.status == "cancelled"
    assert result.error["code"] == "cancelled"
    assert result.outputs == {}
    assert statuses(result) == {"d0": "failed"}


def test_cancellation_between_nodes() -> None:
    seen: list[str] = []
    result = run(
        {"nodes": [transform("a"), transform("b")], "edges": [{"from": "a", "to": "b"}]},
        on_step=lambda step: seen.append(step["node"]),
        should_cancel=lambda: bool(seen),
    )
    assert result.status == "cancelled"
    assert result.error == {"node": None, "code": "cancelled", "message": "run was cancelled"}
    assert seen == ["a"]


# ------------------------------------------------------------------------------------------ limits


def test_payload_limit_on_node_output() -> None:
    definition = {
        "nodes": [{"id": "big", "type": "template", "config": {"template": "{{ inputs.s }}{{ inputs.s }}"}}],
        "outputs": {"big": "nodes.big"},
    }
    limits = Limits(max_payload_bytes=100)
    result = run(definition, {"s": "x" * 60}, limits=limits)
    assert result.status == "failed"
    assert result.error["code"] == "payload_too_large"
    assert result.error["node"] == "big"
    assert run(definition, {"s": "x" * 40}, limits=limits).status == "completed"


def test_payload_limit_on_inputs_at_execute() -> None:
    workflow = compile_workflow({"nodes": [transform("a")]}, limits=Limits(max_payload_bytes=50))
    result = workflow.execute({"s": "x" * 100})
    assert result.status == "failed"
    assert result.error == {
        "node": None,
        "code": "payload_too_large",
        "message": "inputs exceeds the payload limit of 50 bytes",
    }


def test_payload_limit_on_run_outputs() -> None:
    definition = {
        "nodes": [transform("a", "inputs.s"), transform("b", "inputs.s")],
        "outputs": {"a": "nodes.a", "b": "nodes.b", "c": "nodes.a"},
    }
    result = run(definition, {"s": "x" * 40}, limits=Limits(max_payload_bytes=100))
    assert result.status == "failed"
    assert result.error["code"] == "payload_too_large"
    assert result.error["node"] is None


def test_non_json_output_from_a_python_node() -> None:
    registry = NodeRegistry()
    from apps.engine import NodeType

    registry.register(NodeType(name="setter", run=lambda config, ctx: {1, 2}))
    result = run({"nodes": [{"id": "s", "type": "setter"}]}, registry=registry)
    assert result.status == "failed"
    assert result.error["code"] == "invalid_output"


def test_output_expression_runtime_error() -> None:
    result = run({"nodes": [transform("a", "`5`")], "outputs": {"n": "length(nodes.a)"}})
    assert result.status == "failed"
    assert result.error["node"] is None
    assert result.error["message"].startswith("outputs.n:")
