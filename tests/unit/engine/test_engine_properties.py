"""Property tests: random graphs either compile and run in dependency order (concurrently), or are rejected for cycles."""

from __future__ import annotations

import graphlib
import re
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.engine import DefinitionError, Limits, compile_workflow
from apps.engine.compiler import _DEFINITION_VALIDATOR, _shape_is_valid

CYCLE_IN_MESSAGE = re.compile(r"cycle(?: detected:)? (n\d+(?: -> n\d+)+)")


Graph = tuple[int, list[tuple[int, int]], list[int | None], int]


@st.composite
def random_graphs(draw: st.DrawFn) -> Graph:
    size = draw(st.integers(min_value=1, max_value=12))
    pairs = st.tuples(st.integers(0, size - 1), st.integers(0, size - 1))
    edges = draw(st.lists(pairs, max_size=3 * size, unique=True))
    # About a third of the nodes are delays of 0-5 ms, so branches overlap on the worker pool.
    delays = draw(st.lists(st.one_of(st.none(), st.none(), st.integers(0, 5)), min_size=size, max_size=size))
    parallel = draw(st.integers(min_value=1, max_value=4))
    return size, edges, delays, parallel


def build_definition(size: int, edges: list[tuple[int, int]], delays: list[int | None] | None = None) -> dict[str, Any]:
    delays = delays or [None] * size
    preds: dict[int, list[int]] = {i: [] for i in range(size)}
    for source, target in edges:
        preds[target].append(source)
    nodes = []
    for i in range(size):
        if delays[i] is not None:
            nodes.append({"id": f"n{i}", "type": "delay", "config": {"seconds": delays[i] / 1000}})
            continue
        # Each transform adds 1 to the sum of its predecessors' values (a delay counts 1: its output has one
        # key), so outputs also prove data flowed along edges.
        terms = ["`1`"]
        for p in sorted(set(preds[i])):
            if p != i:
                terms.append(f"length(keys(nodes.n{p}))" if delays[p] is not None else f"nodes.n{p}")
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
def test_random_graphs_run_in_dependency_order_or_are_rejected_for_cycles(graph: Graph) -> None:
    size, edges, delays, parallel = graph
    definition = build_definition(size, edges, delays)
    edge_set = set(edges)
    try:
        workflow = compile_workflow(definition, limits=Limits(max_parallel_nodes=parallel))
    except DefinitionError as exc:
        # A refusal is one of the two outcomes this property allows.
        assert not is_acyclic(size, edges)  # noqa: PT017
        named = [CYCLE_IN_MESSAGE.search(error["message"]) for error in exc.errors]
        cycles = [match.group(1).split(" -> ") for match in named if match]
        assert cycles, exc.errors  # noqa: PT017
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
        if delays[node] is not None:
            return 1
        return 1 + sum(expected(s) for s, t in edge_set if t == node)

    assert result.outputs == {f"n{i}": expected(i) if delays[i] is None else {"slept_s": delays[i] / 1000} for i in range(size)}


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


_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.floats(-2, 12, allow_nan=False) | st.sampled_from(["", "a", "n1"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(["a", "x", ""]), children, max_size=2),
    max_leaves=6,
)


_RETRY = st.fixed_dictionaries(
    {"attempts": st.integers(1, 10)},
    optional={"backoff_s": st.floats(0, 5) | st.integers(0, 5), "multiplier": st.floats(1, 3) | st.integers(1, 3)},
)
_NODE = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "Bad id"]), "type": st.sampled_from(["transform", "nope"])},
    optional={
        "config": st.just({"expression": "`1`"}),
        "retry": _RETRY,
        "timeout_s": st.floats(0.1, 5) | st.integers(1, 5),
        "on_error": _ANY_JSON,
    },
)
_EDGE = st.fixed_dictionaries({"from": st.just("a"), "to": st.just("b")}, optional={"when": st.just("`true`")})
_VALID_SHAPES = st.fixed_dictionaries(
    {"nodes": st.lists(_NODE, min_size=1, max_size=3)},
    optional={
        "inputs": st.just({"type": "object"}),
        "edges": st.lists(_EDGE, max_size=2),
        "outputs": st.dictionaries(st.sampled_from(["o", "p"]), st.just("nodes.a"), max_size=2),
    },
)


@st.composite
def _definitions(draw: st.DrawFn) -> dict[str, Any]:
    """Well-shaped definitions, half of them with one key somewhere set to arbitrary JSON."""
    definition = draw(_VALID_SHAPES)
    if draw(st.booleans()):
        containers: list[dict[str, Any]] = [definition, *definition["nodes"], *definition.get("edges", [])]
        containers += [node["retry"] for node in definition["nodes"] if "retry" in node]
        if "outputs" in definition:
            containers.append(definition["outputs"])
        target = draw(st.sampled_from(containers))
        key = draw(st.sampled_from([*target, "bogus", ""]))
        target[key] = draw(_ANY_JSON)
    return definition


@settings(max_examples=500, deadline=None)
@given(_definitions())
def test_fast_shape_check_never_accepts_what_the_schema_rejects(definition: dict[str, Any]) -> None:
    if _shape_is_valid(definition):
        assert list(_DEFINITION_VALIDATOR.iter_errors(definition)) == []
