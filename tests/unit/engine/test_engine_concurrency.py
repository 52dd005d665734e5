"""Tests of concurrent execution: parallel branches, ordering, callbacks' thread, stops with branches in flight."""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from engine_helpers import FakeWorkflows, by_node, run

from apps.engine import (
    Limits,
    NodeError,
    NodeRegistry,
    NodeType,
    RunContext,
    ThreadBudget,
    compile_workflow,
    default_registry,
)


def delay(node_id: str, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "delay", "config": {"seconds": seconds}, **extra}


def transform(node_id: str, expression: str = "`1`", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "config": {"expression": expression}, **extra}


def statuses(result: Any) -> dict[str, str]:
    return {step["node"]: step["status"] for step in result.steps}


class Probe:
    """A non-pure node type that sleeps, then records which thread ran it and how many ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.threads: dict[str, str] = {}

    def run(self, config: dict[str, Any], ctx: RunContext) -> Any:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads[ctx.node_id] = threading.current_thread().name
        try:
            ctx.sleep(config.get("seconds", 0.05))
            if config.get("fail"):
                raise NodeError("probe_failed", f"{ctx.node_id} failed on purpose")
            return {"node": ctx.node_id, "saw": sorted(ctx.nodes)}
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def probe_registry(probe: Probe) -> NodeRegistry:
    registry = default_registry.copy()
    registry.register(NodeType(name="probe", run=probe.run, pure=False))
    return registry


def probe_node(node_id: str, seconds: float = 0.05, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "probe", "config": {"seconds": seconds, **config}}


# ----------------------------------------------------------------------------------- parallelism


def test_two_delay_branches_run_concurrently() -> None:
    definition = {
        "nodes": [delay("a", 0.3), delay("b", 0.3), {"id": "join", "type": "merge", "config": {"from": ["a", "b"]}}],
        "edges": [{"from": "a", "to": "join"}, {"from": "b", "to": "join"}],
        "outputs": {"join": "nodes.join"},
    }
    started = time.monotonic()
    result = run(definition)
    elapsed = time.monotonic() - started
    assert result.status == "completed"
    assert result.outputs == {"join": {"a": {"slept_s": 0.3}, "b": {"slept_s": 0.3}}}
    assert elapsed < 0.45, f"{elapsed:.3f} s: branches did not overlap"
    assert [step["node"] for step in result.steps][-1] == "join"


def test_steps_are_in_finish_order() -> None:
    definition = {"nodes": [delay("slow", 0.2), delay("fast", 0.02), transform("quick")]}
    result = run(definition)
    assert result.status == "completed"
    assert [step["node"] for step in result.steps] == ["quick", "fast", "slow"]


def test_pool_is_bounded_by_max_parallel_nodes(probe: Probe, probe_registry: NodeRegistry) -> None:
    definition = {"nodes": [probe_node(f"p{i}", 0.05) for i in range(6)]}
    started = time.monotonic()
    result = run(definition, registry=probe_registry, limits=Limits(max_parallel_nodes=2))
    elapsed = time.monotonic() - started
    assert result.status == "completed"
    assert probe.peak == 2
    assert elapsed >= 0.14  # three rounds of two
    assert len(result.steps) == 6


def test_default_pool_runs_eight_at_once(probe: Probe, probe_registry: NodeRegistry) -> None:
    result = run({"nodes": [probe_node(f"p{i}", 0.1) for i in range(10)]}, registry=probe_registry)
    assert result.status == "completed"
    assert probe.peak == 8


def test_pure_nodes_run_on_the_calling_thread_and_io_on_workers(probe: Probe, probe_registry: NodeRegistry) -> None:
    seen: dict[str, str] = {}
    registry = probe_registry.copy()
    registry.register(
        NodeType(name="where", run=lambda config, ctx: seen.setdefault(ctx.node_id, threading.current_thread().name), pure=True)
    )
    definition = {"nodes": [probe_node("io1"), probe_node("io2"), {"id": "calc", "type": "where"}]}
    assert run(definition, registry=registry).status == "completed"
    assert seen["calc"] == threading.current_thread().name
    assert {probe.threads["io1"], probe.threads["io2"]} <= {f"nexus-run_{i}" for i in range(8)}


def test_a_lone_io_node_runs_on_the_calling_thread(probe: Probe, probe_registry: NodeRegistry) -> None:
    definition = {"nodes": [probe_node("a"), probe_node("b")], "edges": [{"from": "a", "to": "b"}]}
    assert run(definition, registry=probe_registry).status == "completed"
    assert probe.threads == {"a": threading.current_thread().name, "b": threading.current_thread().name}


def test_callbacks_run_on_the_calling_thread_one_at_a_time(probe_registry: NodeRegistry) -> None:
    caller = threading.current_thread().name
    threads: set[str] = set()
    active = [0]
    overlaps = []

    def on_step(step: dict[str, Any]) -> None:
        active[0] += 1
        overlaps.append(active[0])
        threads.add(threading.current_thread().name)
        time.sleep(0.001)
        active[0] -= 1

    def should_cancel() -> bool:
        threads.add(threading.current_thread().name)
        return False

    definition = {"nodes": [probe_node(f"p{i}", 0.03) for i in range(5)]}
    result = run(definition, registry=probe_registry, on_step=on_step, should_cancel=should_cancel)
    assert result.status == "completed"
    assert threads == {caller}
    assert max(overlaps) == 1


def test_a_node_sees_only_its_upstream_outputs(probe_registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            transform("root"),
            delay("side", 0.05),
            probe_node("mid", 0.01),
            transform("everything", "keys(nodes)"),
        ],
        "edges": [{"from": "root", "to": "mid"}, {"from": "mid", "to": "everything"}],
        "outputs": {"mid": "nodes.mid.saw", "everything": "nodes.everything"},
    }
    outputs = {str(run(definition, registry=probe_registry).outputs) for _ in range(3)}
    assert outputs == {str({"mid": ["root"], "everything": ["root", "mid"]})}


def test_results_are_deterministic_under_concurrency() -> None:
    nodes = [delay(f"d{i}", 0.001 * (i % 3)) for i in range(6)]
    nodes.append({"id": "all", "type": "merge", "config": {"from": [f"d{i}" for i in range(6)], "mode": "list"}})
    nodes.append(transform("n", "length(keys(nodes))"))
    edges = [{"from": f"d{i}", "to": "all"} for i in range(6)] + [{"from": "all", "to": "n"}]
    definition = {"nodes": nodes, "edges": edges, "outputs": {"all": "nodes.all", "n": "nodes.n"}}
    workflow = compile_workflow(definition)
    outputs = [workflow.execute({}).outputs for _ in range(5)]
    assert all(item == outputs[0] for item in outputs)
    assert outputs[0]["n"] == 7


def test_worker_scope_wraps_worker_nodes_only(probe: Probe, probe_registry: NodeRegistry) -> None:
    entered: list[str] = []

    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        entered.append(threading.current_thread().name)
        yield

    workflow = compile_workflow({"nodes": [probe_node("a"), probe_node("b"), transform("c")]}, registry=probe_registry)
    assert workflow.execute({}, worker_scope=scope).status == "completed"
    assert sorted(entered) == sorted([probe.threads["a"], probe.threads["b"]])
    assert threading.current_thread().name not in entered


def test_worker_scope_failure_is_a_node_error(probe_registry: NodeRegistry) -> None:
    def scope() -> Any:
        raise RuntimeError("no database")

    workflow = compile_workflow({"nodes": [probe_node("a"), probe_node("b")]}, registry=probe_registry)
    result = workflow.execute({}, worker_scope=scope)
    assert result.status == "failed"
    assert result.error["code"] == "node_error"
    assert "no database" in result.error["message"]


def test_workers_see_the_callers_context_variables() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="unset")
    registry = default_registry.copy()
    registry.register(NodeType(name="tag", run=lambda config, ctx: request_id.get(), pure=False))
    definition = {"nodes": [{"id": "a", "type": "tag"}, {"id": "b", "type": "tag"}], "outputs": {"a": "nodes.a", "b": "nodes.b"}}
    token = request_id.set("req-42")
    try:
        assert run(definition, registry=registry).outputs == {"a": "req-42", "b": "req-42"}
    finally:
        request_id.reset(token)


# -------------------------------------------------------------------------------- stops in flight


def test_cancellation_with_branches_in_flight() -> None:
    cancel_at = time.monotonic() + 0.1
    started = time.monotonic()
    result = run({"nodes": [delay("a", 2), delay("b", 2)]}, should_cancel=lambda: time.monotonic() > cancel_at)
    assert time.monotonic() - started < 0.5
    assert result.status == "cancelled"
    assert result.error["code"] == "cancelled"
    assert result.error["node"] in ("a", "b")
    assert statuses(result) == {"a": "failed", "b": "failed"}
    assert {step["error"]["code"] for step in result.steps} == {"cancelled"}


def test_deadline_with_branches_in_flight() -> None:
    started = time.monotonic()
    result = run({"nodes": [delay("a", 2), delay("b", 2)]}, deadline=time.monotonic() + 0.1)
    assert time.monotonic() - started < 0.5
    assert result.status == "timed_out"
    assert result.error["code"] == "timeout"
    assert result.error["node"] in ("a", "b")
    assert statuses(result) == {"a": "failed", "b": "failed"}


def test_a_failing_branch_stops_its_siblings(probe_registry: NodeRegistry) -> None:
    definition = {
        "nodes": [probe_node("bad", 0.02, fail=True), delay("long", 5), transform("after_long")],
        "edges": [{"from": "long", "to": "after_long"}],
    }
    started = time.monotonic()
    result = run(definition, registry=probe_registry)
    assert time.monotonic() - started < 0.5
    assert result.status == "failed"
    assert result.error == {"node": "bad", "code": "probe_failed", "message": "bad failed on purpose"}
    steps = by_node(result)
    assert steps["long"]["status"] == "failed"
    assert steps["long"]["error"] == {"code": "aborted", "message": "the run stopped because node 'bad' failed"}
    assert "after_long" not in steps
    assert [step["node"] for step in result.steps] == ["bad", "long"]


def test_in_flight_nodes_that_finish_after_a_failure_are_recorded(probe_registry: NodeRegistry) -> None:
    registry = probe_registry.copy()
    registry.register(NodeType(name="busy", run=lambda config, ctx: time.sleep(0.1) or "done", pure=False))
    definition = {"nodes": [probe_node("bad", 0.01, fail=True), {"id": "busy", "type": "busy"}]}
    result = run(definition, registry=registry)
    assert result.status == "failed"
    assert by_node(result)["busy"]["status"] == "completed"
    assert by_node(result)["busy"]["output"] == "done"


def test_nodes_waiting_for_a_worker_do_not_start_after_a_failure(probe_registry: NodeRegistry) -> None:
    definition = {"nodes": [probe_node("bad", 0.02, fail=True), *(probe_node(f"p{i}", 0.2) for i in range(3))]}
    result = run(definition, registry=probe_registry, limits=Limits(max_parallel_nodes=2))
    assert result.status == "failed"
    assert set(statuses(result)) == {"bad", "p0"}


def test_on_step_exception_propagates_after_workers_stop(probe: Probe, probe_registry: NodeRegistry) -> None:
    def on_step(step: dict[str, Any]) -> None:
        if step["node"] == "fast":
            raise RuntimeError("recorder down")

    definition = {"nodes": [probe_node("fast", 0.01), probe_node("slow", 5)]}
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="recorder down"):
        run(definition, registry=probe_registry, on_step=on_step)
    assert time.monotonic() - started < 0.5
    assert probe.running == 0


def test_nodes_ignoring_deadlines_are_abandoned(monkeypatch: pytest.MonkeyPatch) -> None:
    from apps.engine import runtime

    monkeypatch.setattr(runtime, "DRAIN_GRACE_S", 0.1)
    release = threading.Event()
    registry = default_registry.copy()
    registry.register(NodeType(name="stuck", run=lambda config, ctx: release.wait(5) and "late", pure=False))
    definition = {"nodes": [{"id": "s1", "type": "stuck"}, {"id": "s2", "type": "stuck"}]}
    started = time.monotonic()
    try:
        result = run(definition, registry=registry, deadline=time.monotonic() + 0.05)
    finally:
        release.set()
    assert time.monotonic() - started < 1
    assert result.status == "timed_out"
    assert {step["error"]["code"] for step in result.steps} == {"abandoned"}


# -------------------------------------------------------------------------------------- recovery


def test_fallback_runs_on_a_worker_while_another_branch_is_in_flight(probe_registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            probe_node("primary", 0.01, fail=True, **{}) | {"on_error": {"fallback": "backup"}},
            probe_node("backup", 0.01),
            delay("other", 0.1),
            transform("use", "nodes.primary.node"),
        ],
        "edges": [{"from": "primary", "to": "use"}],
        "outputs": {"use": "nodes.use"},
    }
    result = run(definition, registry=probe_registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"use": "backup"}
    assert result.recovery[0]["node"] == "primary" and result.recovery[0]["fallback"] == "backup"
    order = [step["node"] for step in result.steps]
    assert order.index("backup") < order.index("primary") < order.index("use")


def test_continue_policy_with_concurrent_branches(probe_registry: NodeRegistry) -> None:
    definition = {
        "nodes": [probe_node("bad", 0.01, fail=True) | {"on_error": "continue"}, delay("ok", 0.05)],
        "outputs": {"bad": "nodes.bad", "ok": "nodes.ok"},
    }
    result = run(definition, registry=probe_registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"bad": None, "ok": {"slept_s": 0.05}}


def test_edge_conditions_see_an_unused_fallback_chain_as_null(registry: NodeRegistry) -> None:
    definition = {
        "nodes": [
            {"id": "a", "type": "flaky", "on_error": {"fallback": "b"}},
            {"id": "b", "type": "flaky", "config": {"fail_times": 0, "output": "from b"}, "on_error": {"fallback": "c"}},
            transform("c", "'from c'"),
            transform("d", "'ran'"),
        ],
        "edges": [{"from": "b", "to": "d", "when": "nodes.c == null && length(keys(nodes)) == `3`"}],
        "outputs": {"a": "nodes.a", "d": "nodes.d"},
    }
    result = run(definition, registry=registry)
    assert result.status == "completed_with_recovery"
    assert result.outputs == {"a": "from b", "d": "ran"}
    assert statuses(result)["c"] == "skipped"


def test_runs_on_the_calling_thread_when_no_worker_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(ThreadPoolExecutor, "submit", refuse)
    result = run({"nodes": [delay("a", 0.01), delay("b", 0.01)], "outputs": {"a": "nodes.a"}})
    assert result.status == "completed"
    assert result.outputs == {"a": {"slept_s": 0.01}}


# ------------------------------------------------------------------------------- run tree budget


def _fanout(child: str, width: int) -> dict[str, Any]:
    return {"nodes": [{"id": f"c{i}", "type": "subworkflow", "config": {"workflow": child}} for i in range(width)]}


def _nexus_run_threads() -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith("nexus-run"))


def test_a_tree_of_parallel_subworkflows_shares_one_thread_budget(probe: Probe, probe_registry: NodeRegistry) -> None:
    width = 4
    definitions = {
        "mid": _fanout("leaf", width),
        "leaf": {"nodes": [probe_node("p1", 0.02), probe_node("p2", 0.02)]},
    }

    class Workflows(FakeWorkflows):
        peak_threads = 0

        def run(self, **kwargs: Any) -> dict[str, Any]:
            Workflows.peak_threads = max(Workflows.peak_threads, _nexus_run_threads())
            definition = self.definitions[kwargs["workflow"]]
            result = compile_workflow(definition, registry=probe_registry, limits=Limits(max_parallel_nodes=width)).execute(
                kwargs["inputs"], ports={"workflows": self}, depth=kwargs["depth"], threads=kwargs["threads"]
            )
            return {"execution_id": "run_x", "status": result.status, "outputs": result.outputs, "error": result.error}

    workflows = Workflows(definitions)
    top = compile_workflow(_fanout("mid", width), registry=probe_registry, limits=Limits(max_parallel_nodes=width))
    result = top.execute({}, ports={"workflows": workflows})
    assert result.status == "completed", result.error
    # 4 mid runs x 4 leaf runs x 2 probes: all ran, never more than the budget of 4 worker threads at once
    # (each run with a pool of its own would have had up to 4 + 16 + 32 threads).
    assert len(probe.threads) == 2  # node ids repeat across leaf runs; every leaf ran both
    assert probe.peak <= width
    assert Workflows.peak_threads <= width


def test_a_subworkflow_without_a_free_thread_runs_its_branches_one_by_one(probe: Probe, probe_registry: NodeRegistry) -> None:
    budget = ThreadBudget(1)
    assert budget.try_acquire()  # the caller's branch holds the only thread, as a parent's node would
    child = compile_workflow({"nodes": [probe_node(f"p{i}", 0.02) for i in range(3)]}, registry=probe_registry)
    caller = threading.current_thread().name
    result = child.execute({}, threads=budget)
    assert result.status == "completed"
    assert probe.peak == 1
    assert set(probe.threads.values()) == {caller}
    budget.release()
    assert budget.try_acquire()
