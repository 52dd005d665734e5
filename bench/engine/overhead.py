"""In-process engine overhead per node: compile and execute time for a 100-node chain and a 100-wide fan-out/fan-in.

Run: .venv/bin/python bench/engine/overhead.py [--runs N] [--json]

Every node is a `transform` (the cheapest real node), so the numbers are the engine's own cost per node:
scheduling, context set-up, payload checks and step records. Each figure is the median of N runs (default 30)
after warm-up, divided by the number of nodes, in microseconds.

The third row runs the fan-out with `transform` registered as not pure, so the 100 branches go through the
per-run worker pool: it is the measurement behind running pure CPU-light nodes on the calling thread.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.engine import NodeRegistry, compile_workflow, default_registry  # noqa: E402

WIDTH = 100
TARGET_US = 50.0


def chain(length: int = WIDTH) -> dict[str, Any]:
    nodes = [{"id": "n0", "type": "transform", "config": {"expression": "inputs.value"}}]
    nodes += [{"id": f"n{i}", "type": "transform", "config": {"expression": f"nodes.n{i - 1}"}} for i in range(1, length)]
    edges = [{"from": f"n{i - 1}", "to": f"n{i}"} for i in range(1, length)]
    return {"nodes": nodes, "edges": edges, "outputs": {"last": f"nodes.n{length - 1}"}}


def fan(width: int = WIDTH) -> dict[str, Any]:
    nodes = [{"id": "root", "type": "transform", "config": {"expression": "inputs.value"}}]
    nodes += [{"id": f"b{i}", "type": "transform", "config": {"expression": "nodes.root"}} for i in range(width)]
    nodes.append({"id": "join", "type": "merge", "config": {"from": [f"b{i}" for i in range(width)], "mode": "list"}})
    edges = [{"from": "root", "to": f"b{i}"} for i in range(width)]
    edges += [{"from": f"b{i}", "to": "join"} for i in range(width)]
    return {"nodes": nodes, "edges": edges, "outputs": {"count": "length(nodes.join)"}}


def pool_registry() -> NodeRegistry:
    """The default registry with `transform` marked not pure: every concurrent transform goes to a worker."""
    registry = default_registry.copy()
    transform = default_registry.get("transform")
    assert transform is not None
    registry.register(dataclasses.replace(transform, pure=False), replace=True)
    return registry


def measure(definition: dict[str, Any], runs: int, registry: NodeRegistry = default_registry) -> dict[str, Any]:
    count = len(definition["nodes"])
    inputs = {"value": 42}
    for _ in range(5):  # warm-up: imports, caches, the allocator
        compile_workflow(definition, registry=registry).execute(inputs)
    compile_times, execute_times = [], []
    gc.collect()
    for _ in range(runs):
        started = time.perf_counter()
        workflow = compile_workflow(definition, registry=registry)
        compiled = time.perf_counter()
        result = workflow.execute(inputs)
        finished = time.perf_counter()
        assert result.status == "completed", result.error
        assert len(result.steps) == count
        compile_times.append(compiled - started)
        execute_times.append(finished - compiled)
    return {
        "nodes": count,
        "compile_us_per_node": round(statistics.median(compile_times) / count * 1e6, 1),
        "execute_us_per_node": round(statistics.median(execute_times) / count * 1e6, 1),
        "execute_p90_us_per_node": round(statistics.quantiles(execute_times, n=10)[-1] / count * 1e6, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="measured runs per shape (median reported; >= 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    runs = max(args.runs, 20)
    results = {
        f"chain of {WIDTH} transforms": measure(chain(), runs),
        f"fan-out/fan-in 1 -> {WIDTH} -> 1": measure(fan(), runs),
    }
    pooled = {"fan-out/fan-in, transforms forced onto the worker pool (not shipped)": measure(fan(), runs, pool_registry())}
    if args.json:
        print(json.dumps({**results, **pooled}, indent=2))
    else:
        print(f"Python {platform.python_version()} on {platform.machine()}, median of {runs} runs after warm-up, µs per node")
        print(f"| shape | nodes | compile µs/node | execute µs/node | execute p90 µs/node | target < {TARGET_US:g} µs |")
        print("|---|---|---|---|---|---|")
        for name, row in {**results, **pooled}.items():
            ok = row["compile_us_per_node"] < TARGET_US and row["execute_us_per_node"] < TARGET_US
            print(
                f"| {name} | {row['nodes']} | {row['compile_us_per_node']} | {row['execute_us_per_node']} "
                f"| {row['execute_p90_us_per_node']} | {'yes' if ok else 'NO'} |"
            )
    over = [row for row in results.values() if max(row["compile_us_per_node"], row["execute_us_per_node"]) >= TARGET_US]
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
