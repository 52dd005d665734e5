"""Compiled workflows and their execution: scheduling, concurrency, retries, recovery, deadlines and run results."""

from __future__ import annotations

import contextvars
import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from queue import Empty, SimpleQueue
from typing import Any

from referencing.exceptions import Unresolvable

from .errors import InputError, NodeError, RunInterrupted, format_path, schema_error_location
from .expressions import Expression, is_truthy
from .limits import Limits
from .payload import check_payload
from .registry import SLEEP_SLICE_S, NodeType, RunContext, StopSignal, sleep_until

__all__ = ["CompiledWorkflow", "RunResult", "ThreadBudget"]

_monotonic = time.monotonic
_perf = time.perf_counter
_UTC = UTC
_heappush = heapq.heappush
_heappop = heapq.heappop

StepCallback = Callable[[dict[str, Any]], None]
CancelCheck = Callable[[], bool]
WorkerScope = Callable[[], AbstractContextManager[Any]]

# Once a run is stopping, nodes still in flight get this long past the run deadline to notice and return.
DRAIN_GRACE_S = 1.0


class ThreadBudget:
    """The worker threads of one run tree: a run and every subworkflow run under it share these.

    Without a shared budget each child run would get its own pool, so a fan-out of fan-outs would
    multiply threads (and the database connections they open) level by level. A thread is only
    started for a node that got a slot; a run that gets none runs the node on its own thread, the
    one its caller lent it, so a child never waits for a slot its ancestors hold (no deadlock).
    """

    __slots__ = ("_closed", "_executor", "_lock", "_slots", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a thread budget needs at least one thread")
        self.size = size
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    def try_acquire(self) -> bool:
        """Take a slot if one is free, without waiting."""
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Run `fn` on a worker thread; the caller holds a slot, so a thread is free or about to be."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the run tree's thread budget is closed")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="nexus-run")
            self._executor.submit(fn, *args)

    def close(self, *, wait: bool) -> None:
        """Stop the worker threads (called by the run that created the budget, when it ends)."""
        with self._lock:
            self._closed = True
            executor = self._executor
        if executor is not None:
            # Queued work is not cancelled: it belongs to a run (maybe a child) that waits for its outcome.
            executor.shutdown(wait=wait)


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
    """One node ready to run: its compiled config, retry policy, wiring and the outputs it may see."""

    __slots__ = (
        "attempts",
        "backoff_s",
        "config",
        "fallback",
        "id",
        "in_degree",
        "index",
        "inline",
        "is_fallback",
        "multiplier",
        "node_type",
        "on_error",
        "out_edges",
        "run",
        "timeout_s",
        "type_name",
        "view",
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
        view: tuple[str, ...] = (),
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
        # Ids of the nodes guaranteed to have settled before this one: exactly what it may read.
        self.view = view
        # Pure, CPU-light nodes that never sleep between retries run on the scheduling thread:
        # handing them to a worker would cost more than running them.
        self.inline = node_type.pure and node_type.cpu_light and (attempts == 1 or backoff_s == 0)
        self.index = 0
        self.fallback: CompiledNode | None = None
        self.is_fallback = False
        self.out_edges: tuple[Edge, ...] = ()
        self.in_degree = 0

    def __repr__(self) -> str:
        return f"CompiledNode({self.id!r}, {self.type_name!r})"


class Edge:
    __slots__ = ("source", "target", "view", "when")

    def __init__(self, source: CompiledNode, target: CompiledNode, when: Expression | None, view: tuple[str, ...] = ()) -> None:
        self.source = source
        self.target = target
        self.when = when
        # What `when` may read: the source, its upstream and its fallback chain.
        self.view = view


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
        ports: Mapping[str, Any] | None = None,
        depth: int = 0,
        worker_scope: WorkerScope | None = None,
        threads: ThreadBudget | None = None,
    ) -> RunResult:
        """Run the workflow on already validated inputs.

        Independent branches run concurrently: nodes that are not pure and CPU-light go to a
        worker thread whenever another node could run meanwhile and one of the run tree's
        ``threads`` is free (a ThreadBudget; a top-level run creates one of
        ``limits.max_parallel_nodes``, a subworkflow run gets its caller's through the
        ``workflows`` port); with none free they run on the calling thread. `deadline` is a
        time.monotonic() value (capped by limits.max_run_seconds).
        `should_cancel` and `on_step` are only ever called on the calling thread, one call at a
        time, so they need no locking: `should_cancel` is polled between nodes, every
        ~50 ms while branches are in flight and while calling-thread nodes sleep, so keep it
        cheap; `on_step` receives each step dict as soon as the node settles (steps are in the
        order nodes finished). Exceptions raised by `on_step` propagate after in-flight nodes were
        told to stop and have returned. `ports` maps service names to the objects nodes use
        (see ``apps.engine.ports``); `depth` is this run's subworkflow depth (0 at top level).
        `worker_scope`, when given, is called on the worker thread around every node that runs
        there (``with worker_scope(): ...``) to set up what that thread needs (a database
        connection for the tenant, say) and tear it down.
        """
        run_deadline = _monotonic() + self.limits.max_run_seconds
        if deadline is not None and deadline < run_deadline:
            run_deadline = deadline
        return _Run(self, inputs, run_deadline, should_cancel, on_step, ports, depth, worker_scope, threads).execute()

    def __repr__(self) -> str:
        return f"CompiledWorkflow(nodes={list(self._node_ids)!r})"


class _Outcome:
    """What running one node (all its attempts) produced; built wherever the node ran."""

    __slots__ = ("attempts", "duration", "error", "interrupt", "node", "output", "started_at")

    def __init__(
        self,
        node: CompiledNode,
        started_at: str,
        duration: float,
        attempts: int,
        output: Any,
        error: dict[str, str] | None,
        interrupt: RunInterrupted | None,
    ) -> None:
        self.node = node
        self.started_at = started_at
        self.duration = duration
        self.attempts = attempts
        self.output = output
        self.error = error
        self.interrupt = interrupt


class _Waiting:
    """A failed node whose fallback is running: its step is emitted once the fallback settles."""

    __slots__ = ("attempts", "duration", "error", "owner", "started_at")

    def __init__(self, owner: CompiledNode, outcome: _Outcome, error: dict[str, str]) -> None:
        self.owner = owner
        self.started_at = outcome.started_at
        self.duration = outcome.duration
        self.attempts = outcome.attempts
        self.error = error


class _Run:
    """State of one execution.

    One thread, the caller's, owns every piece of run state: it picks ready nodes (lowest
    topological index first), runs pure CPU-light ones itself, hands the others to a worker pool
    when something else could run meanwhile, and applies each node's outcome (steps, outputs,
    recovery, edge propagation) in the order nodes finish. Workers only run node code and post an
    `_Outcome`; they read a private copy of the outputs their node may see (its compile-time
    upstream set), so neither a data race nor scheduling order can change what a node computes.
    """

    __slots__ = (
        "activated",
        "data",
        "deadline",
        "deferred",
        "depth",
        "done",
        "owns_threads",
        "failure",
        "in_flight",
        "in_order",
        "inputs",
        "interrupt",
        "last_index",
        "limits",
        "max_parallel",
        "nodes",
        "on_step",
        "pending",
        "ports",
        "ran",
        "ready",
        "recovery",
        "should_cancel",
        "steps",
        "stop",
        "stopping",
        "threads",
        "waiting",
        "worker_scope",
        "workflow",
    )

    def __init__(
        self,
        workflow: CompiledWorkflow,
        inputs: dict[str, Any],
        deadline: float,
        should_cancel: CancelCheck | None,
        on_step: StepCallback | None,
        ports: Mapping[str, Any] | None,
        depth: int,
        worker_scope: WorkerScope | None,
        threads: ThreadBudget | None = None,
    ) -> None:
        self.workflow = workflow
        self.limits = workflow.limits
        self.inputs = inputs
        self.nodes: dict[str, Any] = {}
        self.data = {"inputs": inputs, "nodes": self.nodes}
        # Whether `nodes` got its keys in topological order (so it may stand in for a view as is).
        self.in_order = True
        self.last_index = -1
        self.deadline = deadline
        self.should_cancel = should_cancel
        self.on_step = on_step
        self.ports = ports
        self.depth = depth
        self.worker_scope = worker_scope
        self.steps: list[dict[str, Any]] = []
        self.recovery: list[dict[str, Any]] = []
        self.pending = dict(workflow._in_degrees)
        self.activated: set[str] = set()
        self.ran: set[str] = set()
        self.ready: list[tuple[int, CompiledNode]] = []
        # Nodes waiting for a free worker, in the order they became ready.
        self.deferred: deque[CompiledNode] = deque()
        # id -> (node, monotonic time it was handed to a worker)
        self.in_flight: dict[str, tuple[CompiledNode, float]] = {}
        self.waiting: dict[str, _Waiting] = {}
        self.done: SimpleQueue[_Outcome] = SimpleQueue()
        self.owns_threads = threads is None
        self.threads = ThreadBudget(self.limits.max_parallel_nodes) if threads is None else threads
        self.max_parallel = self.limits.max_parallel_nodes
        self.stop = StopSignal()
        self.stopping = False
        self.failure: dict[str, Any] | None = None
        self.interrupt: RunInterrupted | None = None

    # ------------------------------------------------------------------------------------ driver

    def execute(self) -> RunResult:
        started = _perf()
        try:
            check_payload(self.inputs, self.limits.max_payload_bytes, "inputs")
        except NodeError as exc:
            return self._result("failed", started, {"node": None, "code": exc.code, "message": exc.message})
        finished = False
        try:
            for root in self.workflow._roots:
                _heappush(self.ready, (root.index, root))
            self._schedule()
            self._drain()
            finished = True
        finally:
            if self.in_flight and not finished and self.stop.interrupt is None:
                # A callback raised: tell in-flight nodes to stop before the exception leaves.
                self.stop.interrupt = RunInterrupted("failed", "aborted", "the run was aborted")
            if not finished:
                # Wait for this run's workers (they were told to stop) before the exception leaves.
                while self.in_flight:
                    del self.in_flight[self.done.get().node.id]
            if self.owns_threads:
                # Wait for the workers unless _drain gave up on a node that ignores deadlines.
                self.threads.close(wait=not (finished and self.in_flight))
        if self.failure is not None:
            return self._result("failed", started, self.failure)
        if self.interrupt is not None:
            interrupt = self.interrupt
            return self._result(
                interrupt.status, started, {"node": interrupt.node, "code": interrupt.code, "message": interrupt.message}
            )
        outputs = self._outputs()
        if outputs is None:
            return self._result("failed", started, self.failure)
        return self._result("completed_with_recovery" if self.recovery else "completed", started, None, outputs)

    def _schedule(self) -> None:
        ready = self.ready
        done = self.done
        while not self.stopping:
            if self.in_flight and not done.empty():
                self._collect(done.get())
                continue
            if ready:
                if not self._checkpoint():
                    return
                self._dispatch(_heappop(ready)[1])
                continue
            if not self.in_flight:
                if self.deferred:
                    self._pump()
                    continue
                return
            try:
                outcome = done.get(timeout=SLEEP_SLICE_S)
            except Empty:
                self._checkpoint()
                continue
            self._collect(outcome)
            if not self.ready and not self.stopping:
                # Completions that free nothing (a wide fan-in filling up) still poll cancellation.
                self._checkpoint()

    def _drain(self) -> None:
        """After a stop, wait for in-flight nodes (bounded) and record how each one ended."""
        if not self.in_flight:
            return
        give_up_at = max(self.deadline, _monotonic()) + DRAIN_GRACE_S
        while self.in_flight:
            remaining = give_up_at - _monotonic()
            if remaining <= 0:
                break
            try:
                outcome = self.done.get(timeout=min(remaining, SLEEP_SLICE_S))
            except Empty:
                continue
            self._collect(outcome)
        for node, handed_at in list(self.in_flight.values()):
            # A node that ignores deadlines keeps its worker thread; the run does not wait for it.
            error = {"code": "abandoned", "message": f"node did not stop within {DRAIN_GRACE_S:g} s of the run stopping"}
            self._emit(node, "failed", _utc_now(), _monotonic() - handed_at, 0, None, error)
            self._fail_owners(node)

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

    def _checkpoint(self) -> bool:
        """Poll cancellation and the run deadline; False (and the run stopping) when either hit."""
        if self.should_cancel is not None and self.should_cancel():
            self._interrupted(RunInterrupted("cancelled", "cancelled", "run was cancelled"))
            return False
        if _monotonic() > self.deadline:
            self._interrupted(RunInterrupted("timed_out", "timeout", "run exceeded its deadline"))
            return False
        return True

    def _interrupted(self, exc: RunInterrupted) -> None:
        current = self.interrupt
        # The first cause wins, except that a node naming itself beats the scheduler's node-less
        # notice of the same cancellation or deadline (the node is what users need to see).
        if self.failure is None and (
            current is None or (current.node is None and exc.node is not None and exc.code == current.code)
        ):
            self.interrupt = exc
        if self.stop.interrupt is None:
            self.stop.interrupt = exc
        self.stopping = True

    def _failed(self, failure: dict[str, Any]) -> None:
        if self.failure is None and self.interrupt is None:
            self.failure = failure
        if self.stop.interrupt is None:
            culprit = f"node {failure['node']!r}" if failure.get("node") else "a node"
            self.stop.interrupt = RunInterrupted("failed", "aborted", f"the run stopped because {culprit} failed")
        self.stopping = True

    # ---------------------------------------------------------------------------------- dispatch

    def _dispatch(self, node: CompiledNode) -> None:
        self.ran.add(node.id)
        if node.inline or (not self.in_flight and not self.ready):
            # Nothing else could run meanwhile, so a worker thread would only add a hand-off.
            self._apply(self._call(node, self._view(node.view, True), self.should_cancel))
        elif len(self.in_flight) < self.max_parallel and not self.deferred:
            self._start(node)
        else:
            self.deferred.append(node)

    def _start(self, node: CompiledNode) -> bool:
        """Hand `node` to a worker if the run tree has a thread free; else run it here when nothing of
        this run is in flight (so it needs no thread), else leave it for later. False: left for later."""
        if self.threads.try_acquire():
            self._submit(node)
            return True
        if self.in_flight:
            self.deferred.append(node)
            return False
        # Every thread of the tree is busy (this may be a subworkflow run on one of them): go sequential.
        self._apply(self._call(node, self._view(node.view, True), self.should_cancel))
        return True

    def _submit(self, node: CompiledNode) -> None:
        """Run `node` on a worker thread; the caller took a slot of the thread budget for it."""
        data = self._view(node.view, True)
        self.in_flight[node.id] = (node, _monotonic())
        try:
            # Workers see the caller's context variables (logging, tracing), each through its own copy.
            self.threads.submit(contextvars.copy_context().run, self._work, node, data)
        except RuntimeError:
            # No thread to be had (process at its thread limit, interpreter shutting down): run it here.
            self.threads.release()
            del self.in_flight[node.id]
            self._apply(self._call(node, data, self.should_cancel))

    def _work(self, node: CompiledNode, data: dict[str, Any]) -> None:
        """Runs on a worker thread; never touches run state, only posts the outcome."""
        try:
            if self.worker_scope is None:
                outcome = self._call(node, data, None)
            else:
                with self.worker_scope():
                    outcome = self._call(node, data, None)
        except BaseException as exc:
            # Only the caller's worker_scope can get here; the node's own errors are in the outcome.
            error = {"code": "node_error", "message": f"worker_scope failed: {describe_exception(exc)}"}
            outcome = _Outcome(node, _utc_now(), 0.0, 0, None, error, None)
        finally:
            # Free the slot before posting, so the scheduler woken by the outcome can use it at once.
            self.threads.release()
        self.done.put(outcome)

    def _collect(self, outcome: _Outcome) -> None:
        """Apply a worker's outcome and give the freed thread to deferred nodes."""
        del self.in_flight[outcome.node.id]
        self._apply(outcome)
        self._pump()

    def _pump(self) -> None:
        """Start deferred nodes while this run may: a free thread, or nothing of it in flight."""
        deferred = self.deferred
        while deferred and not self.stopping and len(self.in_flight) < self.max_parallel:
            if not self._start(deferred.popleft()):
                # _start put it back at the end; keep the order nodes became ready in.
                deferred.rotate(1)
                return

    def _store(self, node: CompiledNode, value: Any) -> None:
        nodes = self.nodes
        if node.id not in nodes:
            if node.index < self.last_index:
                self.in_order = False
            else:
                self.last_index = node.index
        nodes[node.id] = value

    def _view(self, view: tuple[str, ...], snapshot: bool) -> dict[str, Any]:
        """The run data restricted to `view` (keys in topological order); a snapshot is a fresh dict."""
        nodes = self.nodes
        # Everything in `view` has settled, so equal sizes mean equal key sets; while outputs were
        # stored in topological order, the live dict also has the same key order as the view.
        if self.in_order and len(nodes) == len(view):
            # A node's output may be (part of) its input dict, so it must never get the live one:
            # storing it would make `nodes` contain itself.
            return {"inputs": self.inputs, "nodes": nodes.copy()} if snapshot else self.data
        get = nodes.get
        return {"inputs": self.inputs, "nodes": {node_id: get(node_id) for node_id in view}}

    def _call(self, node: CompiledNode, data: dict[str, Any], should_cancel: CancelCheck | None) -> _Outcome:
        started_at = _utc_now()
        t0 = _perf()
        tries = [0]
        try:
            output, error = self._attempt(node, tries, data, should_cancel)
        except RunInterrupted as exc:
            return _Outcome(node, started_at, _perf() - t0, tries[0], None, None, exc)
        return _Outcome(node, started_at, _perf() - t0, tries[0], output, error, None)

    def _attempt(
        self, node: CompiledNode, tries: list[int], data: dict[str, Any], should_cancel: CancelCheck | None
    ) -> tuple[Any, dict[str, str] | None]:
        """Run with retries; `tries[0]` counts attempts even when a RunInterrupted escapes."""
        limits = self.limits
        limit = limits.max_payload_bytes
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
            ctx = RunContext(
                node.id,
                data,
                limits,
                deadline,
                run_deadline,
                should_cancel,
                ports=self.ports,
                depth=self.depth,
                stop=self.stop,
                threads=self.threads,
            )
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
                backoff = RunContext(
                    node.id,
                    data,
                    limits,
                    run_deadline,
                    run_deadline,
                    should_cancel,
                    ports=self.ports,
                    depth=self.depth,
                    stop=self.stop,
                    threads=self.threads,
                )
                sleep_until(_monotonic() + delay, backoff)
            delay *= node.multiplier

    # ------------------------------------------------------------------------------------ settle

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

    def _apply(self, outcome: _Outcome) -> None:
        """Record a node's outcome: its step, then its on_error policy, then propagation."""
        node = outcome.node
        exc = outcome.interrupt
        if exc is not None:
            self._emit(node, "failed", outcome.started_at, outcome.duration, outcome.attempts, None, _interrupt_error(exc))
            self._fail_owners(node)
            if self.stopping:
                # Nodes told to stop report the stop; only a better-named cause of the same kind replaces it.
                if self.failure is None and self.interrupt is not None and exc.code == self.interrupt.code:
                    self._interrupted(exc)
            else:
                self._interrupted(exc)
            return
        error = outcome.error
        if self.stopping:
            # The run is already over: record what happened to this node, start nothing new.
            if error is None:
                self._store(node, outcome.output)
                self._emit(node, "completed", outcome.started_at, outcome.duration, outcome.attempts, outcome.output, None)
            else:
                self._emit(node, "failed", outcome.started_at, outcome.duration, outcome.attempts, None, error)
            self._fail_owners(node)
            return
        if error is None:
            self._store(node, outcome.output)
            self._emit(node, "completed", outcome.started_at, outcome.duration, outcome.attempts, outcome.output, None)
            self._resolved(node)
            return
        if node.on_error == "continue":
            self._store(node, None)
            self._emit(node, "recovered", outcome.started_at, outcome.duration, outcome.attempts, None, error)
            self.recovery.append({"node": node.id, "action": "continue", "fallback": None, "error": error})
            self._resolved(node)
            return
        fallback = node.fallback
        if fallback is None:
            self._emit(node, "failed", outcome.started_at, outcome.duration, outcome.attempts, None, error)
            failure = {"node": node.id, **error}
            self._fail_owners(node)
            self._failed(failure)
            return
        # The fallback sees the failed node as null; afterwards its output stands in for it.
        self._store(node, None)
        self.waiting[fallback.id] = _Waiting(node, outcome, error)
        self._dispatch(fallback)

    def _fail_owners(self, node: CompiledNode) -> None:
        """`node` ended without recovering: every node waiting on it (a fallback chain) failed too."""
        waiting = self.waiting.pop(node.id, None)
        while waiting is not None:
            owner = waiting.owner
            self._emit(owner, "failed", waiting.started_at, waiting.duration, waiting.attempts, None, waiting.error)
            waiting = self.waiting.pop(owner.id, None)

    def _resolved(self, node: CompiledNode) -> None:
        """`node` has an output (or null after `continue`): finish the fallback chain, then propagate."""
        top = node
        waiting = self.waiting.pop(top.id, None)
        while waiting is not None:
            owner = waiting.owner
            self.nodes[owner.id] = self.nodes[top.id]
            self._emit(owner, "recovered", waiting.started_at, waiting.duration, waiting.attempts, None, waiting.error)
            self.recovery.append({"node": owner.id, "action": "fallback", "fallback": top.id, "error": waiting.error})
            top = owner
            waiting = self.waiting.pop(top.id, None)
        if _monotonic() > self.deadline:
            self._interrupted(RunInterrupted("timed_out", "timeout", "run exceeded its deadline", top.id))
            return
        if not self._settle(top):
            assert self.failure is not None
            self._failed(self.failure)

    def _settle(self, node: CompiledNode) -> bool:
        """Propagate a resolved node: settle its fallback chain, then evaluate its outgoing edges."""
        ran_fallbacks = []
        fallback = node.fallback
        while fallback is not None:
            if fallback.id not in self.ran:
                # Skip the unused rest of the chain first, so edge conditions see it settled (null).
                self._skip(fallback)
                break
            ran_fallbacks.append(fallback)
            fallback = fallback.fallback
        for fallback in ran_fallbacks:
            if not self._fire(fallback):
                return False
        return self._fire(node)

    def _fire(self, node: CompiledNode) -> bool:
        ready = self.ready
        for edge in node.out_edges:
            active = True
            if edge.when is not None:
                try:
                    active = is_truthy(edge.when.search(self._view(edge.view, False)))
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
                    _heappush(ready, (target.index, target))
                else:
                    self._skip(target)
        return True

    def _skip(self, node: CompiledNode) -> None:
        """Skip a node and everything that thereby loses all its active inputs."""
        stack = [node]
        while stack:
            current = stack.pop()
            self._store(current, None)
            self._emit(current, "skipped", _utc_now(), 0.0, 0, None, None)
            if current.fallback is not None:
                stack.append(current.fallback)
            for edge in current.out_edges:
                target = edge.target
                left = self.pending[target.id] - 1
                self.pending[target.id] = left
                if left == 0:
                    if target.id in self.activated:
                        _heappush(self.ready, (target.index, target))
                    else:
                        stack.append(target)

    def _outputs(self) -> dict[str, Any] | None:
        outputs = {}
        data = self.data
        if not self.in_order:
            # Branches finished in a timing-dependent order; outputs must not show it (keys(nodes)).
            nodes = self.nodes
            data = {
                "inputs": self.inputs,
                "nodes": {node_id: nodes[node_id] for node_id in self.workflow._node_ids if node_id in nodes},
            }
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
