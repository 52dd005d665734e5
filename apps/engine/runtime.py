"""Compiled workflows and their execution: scheduling, retries, recovery, deadlines and run results."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from referencing.exceptions import Unresolvable

from .errors import InputError, NodeError, RunInterrupted, format_path, schema_error_location
from .expressions import Expression, is_truthy
from .limits import Limits
from .payload import check_payload
from .registry import NodeType, RunContext, sleep_until

__all__ = ["CompiledWorkflow", "RunResult"]

_monotonic = time.monotonic
_perf = time.perf_counter
_UTC = UTC
_BY_INDEX = attrgetter("index")

StepCallback = Callable[[dict[str, Any]], None]
CancelCheck = Callable[[], bool]


@dataclass(slots=True)
class RunResult:
    """Outcome of one execution; every field is plain JSON-compatible data except `duration_ms` (float)."""

    # completed | completed_with_recovery | failed | cancelled | timed_out
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    recovery: list[dict[str, Any]] = field(default_factory=list)
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "outputs": self.outputs,
            "error": self.error,
            "steps": self.steps,
            "recovery": self.recovery,
            "duration_ms": self.duration_ms,
        }


class CompiledNode:
    """One node ready to run: its compiled config, retry policy and wiring."""

    __slots__ = (
        "attempts",
        "backoff_s",
        "config",
        "fallback",
        "id",
        "in_degree",
        "index",
        "is_fallback",
        "multiplier",
        "node_type",
        "on_error",
        "out_edges",
        "run",
        "timeout_s",
        "type_name",
    )

    def __init__(
        self,
        *,
        node_id: str,
        node_type: NodeType,
        config: Any,
        attempts: int = 1,
        backoff_s: float = 0.0,
        multiplier: float = 2.0,
        timeout_s: float | None = None,
        on_error: str = "fail",
    ) -> None:
        self.id = node_id
        self.node_type = node_type
        self.type_name = node_type.name
        self.run = node_type.run
        self.config = config
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.multiplier = multiplier
        self.timeout_s = timeout_s
        self.on_error = on_error
        self.index = 0
        self.fallback: CompiledNode | None = None
        self.is_fallback = False
        self.out_edges: tuple[Edge, ...] = ()
        self.in_degree = 0

    def __repr__(self) -> str:
        return f"CompiledNode({self.id!r}, {self.type_name!r})"


class Edge:
    __slots__ = ("source", "target", "when")

    def __init__(self, source: CompiledNode, target: CompiledNode, when: Expression | None) -> None:
        self.source = source
        self.target = target
        self.when = when


def describe_exception(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _utc_now() -> str:
    return datetime.now(_UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CompiledWorkflow:
    """A validated workflow; immutable, thread-safe, reusable for any number of runs."""

    def __init__(
        self,
        *,
        definition: dict[str, Any],
        input_schema: dict[str, Any],
        input_validator: Any,
        nodes: list[CompiledNode],
        outputs: tuple[tuple[str, Expression], ...],
        limits: Limits,
    ) -> None:
        self.definition = definition
        self.input_schema = input_schema
        self.limits = limits
        self._input_validator = input_validator
        self._nodes = tuple(nodes)
        self._node_ids = tuple(node.id for node in nodes)
        self._roots = tuple(node for node in nodes if node.in_degree == 0 and not node.is_fallback)
        self._in_degrees = {node.id: node.in_degree for node in nodes if node.in_degree}
        self._outputs = outputs
        # Retries mean backoff sleeps, which a web process should not do while a caller waits.
        self.is_inline_eligible = all(node.node_type.pure and node.node_type.cpu_light and node.attempts == 1 for node in nodes)

    @property
    def node_ids(self) -> list[str]:
        """Node ids in the (deterministic) topological order they are scheduled in."""
        return list(self._node_ids)

    def validate_inputs(self, inputs: Any) -> None:
        """Raise InputError listing every way `inputs` violates the input schema or the payload limit."""
        if not isinstance(inputs, dict):
            raise InputError([{"field": "", "message": "inputs must be a JSON object"}])
        try:
            check_payload(inputs, self.limits.max_payload_bytes, "inputs")
        except NodeError as exc:
            raise InputError([{"field": "", "message": exc.message}]) from None
        try:
            errors = [
                {"field": format_path(schema_error_location(error)), "message": error.message}
                for error in self._input_validator.iter_errors(inputs)
            ]
        except Unresolvable as exc:
            raise InputError([{"field": "", "message": f"the input schema has an unresolvable $ref: {exc}"}]) from None
        if errors:
            raise InputError(errors)

    def execute(
        self,
        inputs: dict[str, Any],
        *,
        deadline: float | None = None,
        should_cancel: CancelCheck | None = None,
        on_step: StepCallback | None = None,
    ) -> RunResult:
        """Run the workflow on already validated inputs.

        `deadline` is a time.monotonic() value (capped by limits.max_run_seconds); `should_cancel`
        is polled between nodes and while nodes sleep, so keep it cheap; `on_step` receives each
        step dict as soon as the node settles. Exceptions raised by the callbacks propagate.
        """
        run_deadline = _monotonic() + self.limits.max_run_seconds
        if deadline is not None and deadline < run_deadline:
            run_deadline = deadline
        return _Run(self, inputs, run_deadline, should_cancel, on_step).execute()

    def __repr__(self) -> str:
        return f"CompiledWorkflow(nodes={list(self._node_ids)!r})"


class _Run:
    """State of one execution.

    The scheduler runs waves of ready nodes in topological-index order. Nodes of one wave never
    read each other's outputs (compile-time reference checks only allow upstream nodes), and
    `_resolve` writes only its own node's keys plus appends to `steps`/`recovery`, so running a
    wave concurrently means submitting its `_resolve` calls to a thread pool and then calling
    `_settle` for each node in index order on the scheduler thread (steps then appear in
    completion order).
    """

    __slots__ = (
        "activated",
        "data",
        "deadline",
        "failure",
        "limits",
        "nodes",
        "on_step",
        "pending",
        "ran",
        "recovery",
        "should_cancel",
        "steps",
        "workflow",
    )

    def __init__(
        self,
        workflow: CompiledWorkflow,
        inputs: dict[str, Any],
        deadline: float,
        should_cancel: CancelCheck | None,
        on_step: StepCallback | None,
    ) -> None:
        self.workflow = workflow
        self.limits = workflow.limits
        self.nodes: dict[str, Any] = {}
        self.data = {"inputs": inputs, "nodes": self.nodes}
        self.deadline = deadline
        self.should_cancel = should_cancel
        self.on_step = on_step
        self.steps: list[dict[str, Any]] = []
        self.recovery: list[dict[str, Any]] = []
        self.pending = dict(workflow._in_degrees)
        self.activated: set[str] = set()
        self.ran: set[str] = set()
        self.failure: dict[str, Any] | None = None

    def execute(self) -> RunResult:
        started = _perf()
        try:
            try:
                check_payload(self.data["inputs"], self.limits.max_payload_bytes, "inputs")
            except NodeError as exc:
                return self._result("failed", started, {"node": None, "code": exc.code, "message": exc.message})
            ready = list(self.workflow._roots)
            while ready:
                wave, ready = ready, []
                for node in wave:
                    self._checkpoint()
                    if not self._resolve(node):
                        return self._result("failed", started, self.failure)
                    if _monotonic() > self.deadline:
                        raise RunInterrupted("timed_out", "timeout", "run exceeded its deadline", node.id)
                    if not self._settle(node, ready):
                        return self._result("failed", started, self.failure)
                if len(ready) > 1:
                    ready.sort(key=_BY_INDEX)
            outputs = self._outputs()
            if outputs is None:
                return self._result("failed", started, self.failure)
        except RunInterrupted as exc:
            return self._result(exc.status, started, {"node": exc.node, "code": exc.code, "message": exc.message})
        return self._result("completed_with_recovery" if self.recovery else "completed", started, None, outputs)

    def _result(
        self, status: str, started: float, error: dict[str, Any] | None, outputs: dict[str, Any] | None = None
    ) -> RunResult:
        return RunResult(
            status=status,
            outputs=outputs if outputs is not None else {},
            error=error,
            steps=self.steps,
            recovery=self.recovery,
            duration_ms=round((_perf() - started) * 1000, 3),
        )

    def _checkpoint(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise RunInterrupted("cancelled", "cancelled", "run was cancelled")
        if _monotonic() > self.deadline:
            raise RunInterrupted("timed_out", "timeout", "run exceeded its deadline")

    def _emit(
        self,
        node: CompiledNode,
        status: str,
        started_at: str,
        duration_s: float,
        attempts: int,
        output: Any,
        error: dict[str, str] | None,
    ) -> None:
        step = {
            "node": node.id,
            "type": node.type_name,
            "status": status,
            "started_at": started_at,
            "duration_ms": round(duration_s * 1000, 3),
            "attempts": attempts,
            "output": output,
            "error": error,
        }
        self.steps.append(step)
        if self.on_step is not None:
            self.on_step(step)

    def _resolve(self, node: CompiledNode) -> bool:
        """Run a node (with retries, then its on_error policy); False means the run has failed."""
        started_at = _utc_now()
        t0 = _perf()
        self.ran.add(node.id)
        tries = [0]
        try:
            output, error = self._attempt(node, tries)
        except RunInterrupted as exc:
            self._emit(node, "failed", started_at, _perf() - t0, tries[0], None, _interrupt_error(exc))
            raise
        attempts = tries[0]
        if error is None:
            self.nodes[node.id] = output
            self._emit(node, "completed", started_at, _perf() - t0, attempts, output, None)
            return True
        duration = _perf() - t0
        if node.on_error == "continue":
            self.nodes[node.id] = None
            self._emit(node, "recovered", started_at, duration, attempts, None, error)
            self.recovery.append({"node": node.id, "action": "continue", "fallback": None, "error": error})
            return True
        fallback = node.fallback
        if fallback is None:
            self._emit(node, "failed", started_at, duration, attempts, None, error)
            self.failure = {"node": node.id, **error}
            return False
        # The fallback sees the failed node as null; afterwards its output stands in for it.
        self.nodes[node.id] = None
        try:
            recovered = self._resolve(fallback)
        except RunInterrupted:
            self._emit(node, "failed", started_at, duration, attempts, None, error)
            raise
        if not recovered:
            self._emit(node, "failed", started_at, duration, attempts, None, error)
            return False
        self.nodes[node.id] = self.nodes[fallback.id]
        self._emit(node, "recovered", started_at, duration, attempts, None, error)
        self.recovery.append({"node": node.id, "action": "fallback", "fallback": fallback.id, "error": error})
        return True

    def _attempt(self, node: CompiledNode, tries: list[int]) -> tuple[Any, dict[str, str] | None]:
        """Run with retries; `tries[0]` counts attempts even when a RunInterrupted escapes."""
        limit = self.limits.max_payload_bytes
        run_deadline = self.deadline
        timeout = node.timeout_s
        delay = node.backoff_s
        attempt = 0
        while True:
            attempt += 1
            tries[0] = attempt
            deadline = run_deadline
            if timeout is not None:
                deadline = min(run_deadline, _monotonic() + timeout)
            ctx = RunContext(node.id, self.data, self.limits, deadline, run_deadline, self.should_cancel)
            try:
                output = node.run(node.config, ctx)
                check_payload(output, limit, f"output of node {node.id!r}")
                # Pure nodes cannot be interrupted, so an overrun is only detectable afterwards.
                if deadline < run_deadline and _monotonic() > deadline:
                    raise NodeError("timeout", f"node took longer than its timeout_s of {timeout} s")
                return output, None
            except RunInterrupted:
                raise
            except NodeError as exc:
                failure = exc
            except Exception as exc:
                failure = NodeError("node_error", describe_exception(exc))
            if _monotonic() >= run_deadline:
                # Whatever failed, the run is out of time: report the run deadline, not a node error.
                raise RunInterrupted("timed_out", "timeout", "run exceeded its deadline", node.id)
            if attempt >= node.attempts or not failure.retryable:
                return None, {"code": failure.code, "message": failure.message}
            if delay > 0:
                backoff = RunContext(node.id, self.data, self.limits, run_deadline, run_deadline, self.should_cancel)
                sleep_until(_monotonic() + delay, backoff)
            delay *= node.multiplier

    def _settle(self, node: CompiledNode, ready: list[CompiledNode]) -> bool:
        """Propagate a resolved node: settle its fallback chain, then evaluate its outgoing edges."""
        fallback = node.fallback
        while fallback is not None:
            if fallback.id not in self.ran:
                self._skip(fallback, ready)
                break
            if not self._fire(fallback, ready):
                return False
            fallback = fallback.fallback
        return self._fire(node, ready)

    def _fire(self, node: CompiledNode, ready: list[CompiledNode]) -> bool:
        for edge in node.out_edges:
            active = True
            if edge.when is not None:
                try:
                    active = is_truthy(edge.when.search(self.data))
                except NodeError as exc:
                    message = f"edge {node.id} -> {edge.target.id}: {exc.message}"
                    self.failure = {"node": node.id, "code": exc.code, "message": message}
                    return False
            target = edge.target
            if active:
                self.activated.add(target.id)
            left = self.pending[target.id] - 1
            self.pending[target.id] = left
            if left == 0:
                if target.id in self.activated:
                    ready.append(target)
                else:
                    self._skip(target, ready)
        return True

    def _skip(self, node: CompiledNode, ready: list[CompiledNode]) -> None:
        """Skip a node and everything that thereby loses all its active inputs."""
        stack = [node]
        while stack:
            current = stack.pop()
            self.nodes[current.id] = None
            self._emit(current, "skipped", _utc_now(), 0.0, 0, None, None)
            if current.fallback is not None:
                stack.append(current.fallback)
            for edge in current.out_edges:
                target = edge.target
                left = self.pending[target.id] - 1
                self.pending[target.id] = left
                if left == 0:
                    if target.id in self.activated:
                        ready.append(target)
                    else:
                        stack.append(target)

    def _outputs(self) -> dict[str, Any] | None:
        outputs = {}
        data = self.data
        for name, expression in self.workflow._outputs:
            try:
                outputs[name] = expression.search(data)
            except NodeError as exc:
                path = format_path(["outputs", name])
                self.failure = {"node": None, "code": exc.code, "message": f"{path}: {exc.message}"}
                return None
        try:
            check_payload(outputs, self.limits.max_payload_bytes, "run outputs")
        except NodeError as exc:
            self.failure = {"node": None, "code": exc.code, "message": exc.message}
            return None
        return outputs


def _interrupt_error(exc: RunInterrupted) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message}
