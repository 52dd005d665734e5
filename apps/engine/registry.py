"""Node-type plug-in API: NodeType, NodeRegistry and the contexts handed to compile hooks and runs."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from jinja2 import Template
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from .errors import NodeError, RunInterrupted
from .expressions import Expression, compile_expression, compile_template
from .limits import Limits

__all__ = ["CompileContext", "NodeRegistry", "NodeType", "RunContext", "StopSignal"]

CompileHook = Callable[[dict[str, Any], "CompileContext"], Any]
RunFunction = Callable[[Any, "RunContext"], Any]

_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
_META_VALIDATOR_CLASS = validator_for(Draft202012Validator.META_SCHEMA, default=Draft202012Validator)
META_VALIDATOR = _META_VALIDATOR_CLASS(Draft202012Validator.META_SCHEMA, format_checker=_META_VALIDATOR_CLASS.FORMAT_CHECKER)
# Cancellation and deadlines are noticed within this many seconds while a node sleeps.
SLEEP_SLICE_S = 0.05


@dataclass(frozen=True, eq=False)
class NodeType:
    """A kind of node: how its config is validated and compiled, and how it runs.

    `config_schema` is a Draft 2020-12 JSON Schema for the node's ``config``. `compile(config, ctx)`
    runs once per definition after the schema passed and returns what `run` receives; report
    problems with ``ctx.error(field, message)`` or raise ``ConfigError``. Without a hook `run`
    gets the config dict itself. `run(compiled_config, ctx)` returns the node's JSON output or
    raises ``NodeError``. `pure` means no I/O and no side effects; `cpu_light` that it finishes in
    well under a millisecond for typical inputs. Both are required for the inline fast path, and
    nodes that are both run on the calling thread; the others run on the run's worker threads
    when other branches are in flight, so their `run` must be thread-safe.

    `description`, `output` (the shape of the output, Markdown), `errors` (error code -> when it is
    raised) and `example` (one node of a definition) only feed the generated documentation.
    """

    name: str
    run: RunFunction
    config_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    compile: CompileHook | None = None
    pure: bool = False
    cpu_light: bool = True
    description: str = ""
    output: str = ""
    errors: Mapping[str, str] = field(default_factory=dict)
    example: Mapping[str, Any] | None = None
    validator: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _TYPE_NAME.match(self.name):
            raise ValueError(f"invalid node type name {self.name!r}: use 1-64 chars of a-z, 0-9, '_', '.', ':', '-'")
        if not callable(self.run):
            raise TypeError(f"node type {self.name!r}: run must be callable")
        if self.compile is not None and not callable(self.compile):
            raise TypeError(f"node type {self.name!r}: compile must be callable")
        problems = sorted(META_VALIDATOR.iter_errors(self.config_schema), key=lambda e: list(e.absolute_path))
        if problems:
            raise SchemaError(f"node type {self.name!r}: invalid config_schema: {problems[0].message}")
        object.__setattr__(self, "validator", Draft202012Validator(self.config_schema))


class NodeRegistry:
    """Maps type names to NodeTypes; operators register trusted Python node types here."""

    def __init__(self, node_types: Iterable[NodeType] = ()) -> None:
        self._types: dict[str, NodeType] = {}
        self._lock = threading.Lock()
        for node_type in node_types:
            self.register(node_type)

    def register(self, node_type: NodeType, *, replace: bool = False) -> NodeType:
        """Add a node type; registering an existing name needs ``replace=True``."""
        if not isinstance(node_type, NodeType):
            raise TypeError(f"expected a NodeType, got {type(node_type).__name__}")
        with self._lock:
            if node_type.name in self._types and not replace:
                raise ValueError(f"node type {node_type.name!r} is already registered")
            # Copy-on-write so lookups during concurrent compiles never see a dict mid-update.
            types = dict(self._types)
            types[node_type.name] = node_type
            self._types = types
        return node_type

    def get(self, type_name: str) -> NodeType | None:
        return self._types.get(type_name)

    def types(self) -> list[NodeType]:
        """Registered node types sorted by name."""
        return [self._types[name] for name in sorted(self._types)]

    def copy(self) -> NodeRegistry:
        """A new registry with the same types, to extend without touching this one."""
        return NodeRegistry(self._types.values())

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def __len__(self) -> int:
        return len(self._types)


class CompileContext:
    """What a node type's compile hook sees: limits, known node ids and error/compile helpers.

    Fields passed to the helpers are relative to the node's config (``"template"``,
    ``"mapping.total"``); the engine prefixes them with ``nodes[i].config``.
    """

    def __init__(self, *, node_id: str | None, prefix: str, node_ids: frozenset[str], limits: Limits) -> None:
        self.node_id = node_id
        self.node_ids = node_ids
        self.limits = limits
        self._prefix = prefix
        self.errors: list[dict[str, Any]] = []
        # (field, node id) pairs: node outputs the compiled config reads; the engine checks that
        # each exists and is guaranteed to have finished before this node runs.
        self.refs: list[tuple[str, str]] = []

    def path(self, field: str) -> str:
        return f"{self._prefix}.{field}" if field else self._prefix

    def error(self, field: str, message: str) -> None:
        self.errors.append({"node": self.node_id, "field": self.path(field), "message": message})

    def reference(self, field: str, node_id: str) -> None:
        """Declare that this node reads the output of `node_id`."""
        self.refs.append((self.path(field), node_id))

    def expression(self, field: str, source: Any, *, check_refs: bool = True) -> Expression | None:
        """Compile a JMESPath expression evaluated over ``{"inputs": ..., "nodes": ...}``.

        Pass ``check_refs=False`` for expressions evaluated against something else (e.g. per item),
        where ``nodes.x`` is just data. Returns None after recording an error.
        """
        try:
            expression = compile_expression(source, budget=2 * self.limits.max_payload_bytes, fanout=self.limits.max_fanout)
        except ValueError as exc:
            self.error(field, str(exc))
            return None
        if check_refs:
            for ref in sorted(expression.refs):
                self.reference(field, ref)
        return expression

    def template(self, field: str, source: Any) -> Template | None:
        """Compile a sandboxed Jinja template; returns None after recording an error."""
        try:
            template, refs = compile_template(source)
        except ValueError as exc:
            self.error(field, str(exc))
            return None
        for ref in sorted(refs):
            self.reference(field, ref)
        return template


_NO_PORTS: Mapping[str, Any] = MappingProxyType({})


class StopSignal:
    """Set once by the scheduler when a run must stop; every RunContext of the run polls it in `check`."""

    __slots__ = ("interrupt",)

    def __init__(self) -> None:
        # Written by the scheduler thread, read by worker threads: a single attribute store is atomic.
        self.interrupt: RunInterrupted | None = None


class RunContext:
    """What a node's run function sees: the run context data, limits, ports and deadline helpers.

    ``data`` is ``{"inputs": ..., "nodes": {...}}``, the value expressions are evaluated against;
    ``nodes`` holds the outputs of the nodes guaranteed to have settled before this one (its
    upstream; None for skipped ones), so a node's result never depends on how concurrent branches
    happened to interleave. Treat both as read-only. ``ports`` maps service names ("datasets",
    "artifacts", "mail", "events", "workflows": see ``apps.engine.ports``) to the objects the caller
    of ``execute`` provided; ``depth`` is 0 for a top-level run and n for a run started by a
    subworkflow node n levels down.
    """

    __slots__ = (
        "_should_cancel",
        "_stop",
        "data",
        "deadline",
        "depth",
        "limits",
        "node_id",
        "ports",
        "run_deadline",
        "threads",
    )

    def __init__(
        self,
        node_id: str,
        data: dict[str, Any],
        limits: Limits,
        deadline: float,
        run_deadline: float,
        should_cancel: Callable[[], bool] | None,
        *,
        ports: Mapping[str, Any] | None = None,
        depth: int = 0,
        stop: StopSignal | None = None,
        threads: Any = None,
    ) -> None:
        self.node_id = node_id
        self.data = data
        self.limits = limits
        # time.monotonic() value: the earlier of the run deadline and this attempt's timeout_s.
        self.deadline = deadline
        self.run_deadline = run_deadline
        self.ports = ports if ports is not None else _NO_PORTS
        self.depth = depth
        # The run tree's ThreadBudget: a subworkflow node hands it to the child run it starts.
        self.threads = threads
        self._should_cancel = should_cancel
        self._stop = stop

    @property
    def inputs(self) -> Any:
        return self.data["inputs"]

    @property
    def nodes(self) -> dict[str, Any]:
        return self.data["nodes"]

    def port(self, name: str) -> Any:
        """The service `name` of this run; raises NodeError port_unavailable when the run has none."""
        port = self.ports.get(name)
        if port is None:
            raise NodeError(
                "port_unavailable",
                f"node {self.node_id!r} needs the {name!r} service, which this run does not have",
                retryable=False,
            )
        return port

    def remaining(self) -> float:
        """Seconds left before this node must finish (use it as an I/O timeout)."""
        return max(0.0, self.deadline - time.monotonic())

    def check(self) -> None:
        """Raise if the run was cancelled, is stopping, or a deadline passed; call it in long loops."""
        stop = self._stop
        if stop is not None and stop.interrupt is not None:
            reason = stop.interrupt
            raise RunInterrupted(reason.status, reason.code, reason.message, self.node_id)
        if self._should_cancel is not None and self._should_cancel():
            raise RunInterrupted("cancelled", "cancelled", "run was cancelled", self.node_id)
        now = time.monotonic()
        if now >= self.run_deadline:
            raise RunInterrupted("timed_out", "timeout", "run exceeded its deadline", self.node_id)
        if now >= self.deadline:
            raise NodeError("timeout", "node exceeded its timeout_s")

    def sleep(self, seconds: float) -> None:
        """Sleep in short slices, stopping early on cancellation or a deadline (which raise)."""
        sleep_until(time.monotonic() + seconds, self)


def sleep_until(wake_at: float, ctx: RunContext) -> None:
    while True:
        ctx.check()
        now = time.monotonic()
        if now >= wake_at:
            return
        time.sleep(min(SLEEP_SLICE_S, wake_at - now, max(0.0, ctx.deadline - now) + 0.001))
