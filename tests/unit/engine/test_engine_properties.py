"""Property tests: random graphs either compile and run in dependency order, or are rejected for cycles."""

from __future__ import annotations

import graphlib
import re
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.engine import DefinitionError, compile_workflow

CYCLE_IN_MESSAGE = re.compile(r"cycle(?: detected:)? (n\d+(?: -> n\d+)+)")


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    size = draw(st.integers(min_value=1, max_value=12))
    pairs = st.tuples(st.integers(0, size - 1), st.integers(0, size - 1))
    edges = draw(st.lists(pairs, max_size=3 * size, unique=True))
    return size, edges


def build_definition(size: int, edges: list[tuple[int, int]]) -> dict[str, Any]:
    preds: dict[int, list[int]] = {i: [] for i in range(size)}
    for source, target in edges:
        preds[target].append(source)
    nodes = []
    for i in range(size):
        # Each node adds 1 to the sum of its predecessors, so outputs also prove data flowed along edges.
        terms = ["`1`", *(f"nodes.n{p}" for p in sorted(set(preds[i])) if p != i)]
        nodes.append({"id": f"n{i}", "type": "transform", "config": {"expression": f"sum([{', '.join(terms)}])"}})
    return {
        "nodes": nodes,
        "edges": [{"from": f"n{s}", "to": f"n{t}"} for s, t in edges],
        "outputs": {f"n{i}": f"nodes.n{i}" for i in range(size)},
    }


def is_acyclic(size: int, edges: list[tuple[int, int]]) -> bool:
    sorter = graphlib.TopologicalSorter({i: set() for i in range(size)})
    for source, target in edges:
        sorter.add(target, source)
    try:
        sorter.prepare()
    except graphlib.CycleError:
        return False
    return True


@settings(max_examples=300, deadline=None)
@given(random_graphs())
def test_random_graphs_run_in_dependency_order_or_are_rejected_for_cycles(
    graph: tuple[int, list[tuple[int, int]]],
) -> None:
    size, edges = graph
    definition = build_definition(size, edges)
    edge_set = set(edges)
    try:
        workflow = compile_workflow(definition)
    except DefinitionError as exc:
        assert not is_acyclic(size, edges)
        named = [CYCLE_IN_MESSAGE.search(error["message"]) for error in exc.errors]
        cycles = [match.group(1).split(" -> ") for match in named if match]
        assert cycles, exc.errors
        for cycle in cycles:
            assert cycle[0] == cycle[-1]
            for source, target in zip(cycle, cycle[1:], strict=False):
                assert (int(source[1:]), int(target[1:])) in edge_set
        for error in exc.errors:
            assert "cycle" in error["message"] or "can never run" in error["message"], error
        return

    assert is_acyclic(size, edges)
    position = {node_id: i for i, node_id in enumerate(workflow.node_ids)}
    assert all(position[f"n{s}"] < position[f"n{t}"] for s, t in edges)

    result = workflow.execute({})
    assert result.status == "completed", result.error
    order = [step["node"] for step in result.steps]
    assert sorted(order) == sorted(f"n{i}" for i in range(size))
    ran_at = {node_id: i for i, node_id in enumerate(order)}
    assert all(ran_at[f"n{s}"] < ran_at[f"n{t}"] for s, t in edges)
    assert all(step["status"] == "completed" for step in result.steps)

    @cache
    def expected(node: int) -> int:
        return 1 + sum(expected(s) for s, t in edge_set if t == node)

    assert result.outputs == {f"n{i}": expected(i) for i in range(size)}


@st.composite
def random_conditional_dags(draw: st.DrawFn) -> tuple[int, dict[tuple[int, int], bool | None]]:
    size = draw(st.integers(min_value=1, max_value=12))
    forward = [(s, t) for s in range(size) for t in range(s + 1, size)]
    chosen = draw(st.lists(st.sampled_from(forward), unique=True, max_size=3 * size)) if forward else []
    whens = draw(st.lists(st.sampled_from([None, True, False]), min_size=len(chosen), max_size=len(chosen)))
    return size, dict(zip(chosen, whens, strict=True))


@settings(max_examples=300, deadline=None)
@given(random_conditional_dags())
def test_skips_follow_active_edges(graph: tuple[int, dict[tuple[int, int], bool | None]]) -> None:
    size, edges = graph
    definition = {
        "nodes": [{"id": f"n{i}", "type": "transform", "config": {"expression": "`1`"}} for i in range(size)],
        "edges": [
            {
                "from": f"n{s}",
                "to": f"n{t}",
                **({} if when is None else {"when": "`true`" if when else "`false`"}),
            }
            for (s, t), when in edges.items()
        ],
    }
    result = compile_workflow(definition).execute({})
    assert result.status == "completed"
    status = {step["node"]: step["status"] for step in result.steps}
    assert len(status) == len(result.steps) == size

    ran: dict[int, bool] = {}
    for node in range(size):
        incoming = [(s, when) for (s, t), when in edges.items() if t == node]
        ran[node] = not incoming or any(ran[s] and when is not False for s, when in incoming)
        assert status[f"n{node}"] == ("completed" if ran[node] else "skipped")
