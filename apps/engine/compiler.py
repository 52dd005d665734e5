"""Definition validation and compilation: turns a workflow definition dict into a CompiledWorkflow."""

from __future__ import annotations

import copy
import heapq
import re
from collections import deque
from typing import Any

from jsonschema import Draft202012Validator

from .errors import ConfigError, DefinitionError, format_path, schema_error_location
from .expressions import Expression, compile_expression
from .limits import Limits
from .nodes import default_registry
from .registry import CompileContext, NodeRegistry, NodeType
from .runtime import CompiledNode, CompiledWorkflow, Edge, describe_exception
from .schemas import META_VALIDATOR as SCHEMA_META_VALIDATOR
from .schemas import regex_problems, schema_validator

__all__ = ["compile_workflow"]

_NODE_ID = re.compile(r"^[a-z0-9_-]{1,64}$")
_DEFAULT_INPUT_SCHEMA: dict[str, Any] = {"type": "object"}

# Shape only; ids, references and everything that needs cross-checking happen in _Compiler.
_DEFINITION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["nodes"],
    "properties": {
        "inputs": {"type": "object"},
        "nodes": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "type"],
                "properties": {
                    "id": {"type": "string"},
                    "type": {"type": "string"},
                    "config": {"type": "object"},
                    "retry": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["attempts"],
                        "properties": {
                            "attempts": {"type": "integer", "minimum": 1, "maximum": 10},
                            "backoff_s": {"type": "number", "minimum": 0},
                            "multiplier": {"type": "number", "minimum": 1},
                        },
                    },
                    "timeout_s": {"type": "number", "exclusiveMinimum": 0},
                    "on_error": {},
                },
            },
        },
        "edges": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["from", "to"],
                "properties": {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "when": {"type": "string"},
                },
            },
        },
        "outputs": {
            "type": "object",
            "propertyNames": {"minLength": 1},
            "additionalProperties": {"type": "string"},
        },
    },
}
_DEFINITION_VALIDATOR = Draft202012Validator(_DEFINITION_SCHEMA)
_ON_ERROR_HINT = 'on_error must be "fail", "continue" or {"fallback": "<node id>"}'


def compile_workflow(
    definition: dict[str, Any],
    *,
    limits: Limits | None = None,
    registry: NodeRegistry | None = None,
) -> CompiledWorkflow:
    """Validate a whole definition and compile it; raises DefinitionError listing every problem."""
    compiler = _Compiler(
        definition,
        limits if limits is not None else Limits(),
        registry if registry is not None else default_registry,
    )
    return compiler.compile()


class _NodeSpec:
    """What the compiler learned about one node with a valid, unique id."""

    __slots__ = (
        "compiled",
        "fallback",
        "index",
        "node_id",
        "node_type",
        "on_error",
        "refs",
        "retry",
        "timeout_s",
    )

    def __init__(self, node_id: str, index: int) -> None:
        self.node_id = node_id
        self.index = index
        self.node_type: NodeType | None = None
        self.compiled: Any = None
        self.refs: list[tuple[str, str]] = []
        self.retry: tuple[int, float, float] = (1, 0.0, 2.0)
        self.timeout_s: float | None = None
        self.on_error = "fail"
        self.fallback: str | None = None


class _EdgeSpec:
    __slots__ = ("index", "source", "target", "when")

    def __init__(self, index: int, source: str, target: str, when: Expression | None) -> None:
        self.index = index
        self.source = source
        self.target = target
        self.when = when


class _Compiler:
    def __init__(self, definition: Any, limits: Limits, registry: NodeRegistry) -> None:
        self.definition = definition
        self.limits = limits
        self.registry = registry
        self.errors: list[dict[str, Any]] = []
        self.specs: dict[str, _NodeSpec] = {}
        self.edges: list[_EdgeSpec] = []
        # fallback node id -> id of the node that names it
        self.owners: dict[str, str] = {}
        # node id -> every fallback that may stand in for it (transitively)
        self.chains: dict[str, set[str]] = {}

    def error(self, node: str | None, field: str, message: str) -> None:
        self.errors.append({"node": node, "field": field, "message": message})

    def fail(self) -> DefinitionError:
        return DefinitionError(self.errors)

    # ------------------------------------------------------------------------------------ driver

    def compile(self) -> CompiledWorkflow:
        definition = self.definition
        if not isinstance(definition, dict):
            self.error(None, "", "the definition must be a JSON object")
            raise self.fail()
        raw_nodes = definition.get("nodes")
        if isinstance(raw_nodes, list) and len(raw_nodes) > self.limits.max_nodes:
            # Stop here: validating an oversized definition is itself a denial-of-service vector.
            self.error(None, "nodes", f"too many nodes: {len(raw_nodes)} (the limit is {self.limits.max_nodes})")
            raise self.fail()
        if not _shape_is_valid(definition):
            # The fast check only says yes or "not sure"; jsonschema finds and words the problems.
            self._check_shape(definition)
        input_schema, input_validator = self._compile_inputs(definition)
        raw_nodes = raw_nodes if isinstance(raw_nodes, list) else []
        self._collect_ids(raw_nodes)
        self._compile_nodes(raw_nodes)
        self._compile_edges(definition.get("edges"))
        order, visible = self._analyse_graph()
        self._check_references(visible)
        outputs = self._compile_outputs(definition.get("outputs"))
        if self.errors:
            raise self.fail()
        assert order is not None and visible is not None and input_validator is not None
        return CompiledWorkflow(
            definition=definition,
            input_schema=input_schema,
            input_validator=input_validator,
            nodes=self._build(order, visible),
            outputs=outputs,
            limits=self.limits,
        )

    def _node_at(self, raw_nodes: Any, index: int) -> str | None:
        if isinstance(raw_nodes, list) and index < len(raw_nodes) and isinstance(raw_nodes[index], dict):
            node_id = raw_nodes[index].get("id")
            if isinstance(node_id, str) and _NODE_ID.match(node_id):
                return node_id
        return None

    def _check_shape(self, definition: dict[str, Any]) -> None:
        for error in _DEFINITION_VALIDATOR.iter_errors(definition):
            path = schema_error_location(error)
            node = None
            if len(path) >= 2 and path[0] == "nodes" and isinstance(path[1], int):
                node = self._node_at(definition.get("nodes"), path[1])
            self.error(node, format_path(path), error.message)

    # ------------------------------------------------------------------------------------- inputs

    def _compile_inputs(self, definition: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        schema = definition.get("inputs", _DEFAULT_INPUT_SCHEMA)
        if not isinstance(schema, dict):
            return _DEFAULT_INPUT_SCHEMA, None
        problems = list(SCHEMA_META_VALIDATOR.iter_errors(schema))
        for problem in problems:
            self.error(None, format_path(["inputs", *problem.absolute_path]), problem.message)
        if schema.get("type") != "object":
            self.error(None, "inputs.type", 'the input schema must declare "type": "object" at its root')
        for path, ref in _schema_refs(schema, ["inputs"]):
            if not ref.startswith("#"):
                self.error(None, format_path(path), f"only local references are allowed, not {ref!r}")
        # Input patterns run on RE2 (linear time): one it cannot run is refused now, not at run time.
        regexes = regex_problems(schema, ["inputs"])
        for regex in regexes:
            self.error(None, regex["field"], regex["message"])
        if problems or regexes:
            return schema, None
        return schema, schema_validator(schema)

    # -------------------------------------------------------------------------------------- nodes

    def _collect_ids(self, raw_nodes: list[Any]) -> None:
        for index, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
                continue
            node_id = raw["id"]
            field = f"nodes[{index}].id"
            if not _NODE_ID.match(node_id):
                self.error(
                    None,
                    field,
                    f"invalid node id {node_id!r}: use 1-64 characters from a-z, 0-9, '_' and '-'",
                )
            elif node_id in self.specs:
                first = self.specs[node_id].index
                self.error(node_id, field, f"duplicate node id {node_id!r} (already used by nodes[{first}])")
            else:
                self.specs[node_id] = _NodeSpec(node_id, index)

    def _compile_nodes(self, raw_nodes: list[Any]) -> None:
        known = frozenset(self.specs)
        for index, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict):
                continue
            spec = self.specs.get(raw.get("id"))  # type: ignore[arg-type]
            if spec is not None and spec.index != index:
                spec = None  # a duplicate: validate it, but it is not part of the graph
            node_id = spec.node_id if spec is not None else None
            prefix = f"nodes[{index}]"
            node_type = self._compile_config(raw, index, node_id, known, spec)
            if spec is None:
                self._check_on_error(raw, prefix, node_id, None)
                continue
            spec.node_type = node_type
            retry = raw.get("retry")
            if isinstance(retry, dict) and _is_number(retry.get("attempts")):
                spec.retry = (
                    int(retry["attempts"]),
                    float(retry["backoff_s"]) if _is_number(retry.get("backoff_s")) else 0.0,
                    float(retry["multiplier"]) if _is_number(retry.get("multiplier")) else 2.0,
                )
            if _is_number(raw.get("timeout_s")):
                spec.timeout_s = float(raw["timeout_s"])
            self._check_on_error(raw, prefix, node_id, spec)

    def _compile_config(
        self,
        raw: dict[str, Any],
        index: int,
        node_id: str | None,
        known: frozenset[str],
        spec: _NodeSpec | None,
    ) -> NodeType | None:
        type_name = raw.get("type")
        if not isinstance(type_name, str):
            return None
        node_type = self.registry.get(type_name)
        prefix = f"nodes[{index}]"
        if node_type is None:
            available = ", ".join(t.name for t in self.registry.types())
            self.error(node_id, f"{prefix}.type", f"unknown node type {type_name!r} (available: {available})")
            return None
        config = raw.get("config", {})
        if not isinstance(config, dict):
            return node_type
        problems = list(node_type.validator.iter_errors(config))
        for problem in problems:
            path = format_path([*schema_error_location(problem)])
            field = f"{prefix}.config.{path}" if path and not path.startswith("[") else f"{prefix}.config{path}"
            self.error(node_id, field, problem.message)
        if problems:
            return node_type
        ctx = CompileContext(node_id=node_id, prefix=f"{prefix}.config", node_ids=known, limits=self.limits)
        compiled: Any = None
        try:
            compiled = copy.deepcopy(config) if node_type.compile is None else node_type.compile(config, ctx)
        except ConfigError as exc:
            ctx.error(exc.field, exc.message)
        except Exception as exc:
            ctx.error("", f"node type {type_name!r} failed to compile this config: {describe_exception(exc)}")
        self.errors.extend(ctx.errors)
        if spec is not None:
            spec.compiled = compiled
            spec.refs = ctx.refs
        return node_type

    def _check_on_error(self, raw: dict[str, Any], prefix: str, node_id: str | None, spec: _NodeSpec | None) -> None:
        if "on_error" not in raw:
            return
        value = raw["on_error"]
        field = f"{prefix}.on_error"
        if value in ("fail", "continue"):
            if spec is not None:
                spec.on_error = value
            return
        if not (isinstance(value, dict) and set(value) == {"fallback"} and isinstance(value["fallback"], str)):
            self.error(node_id, field, _ON_ERROR_HINT)
            return
        target = value["fallback"]
        if target not in self.specs:
            self.error(node_id, f"{field}.fallback", f"fallback refers to unknown node {target!r}")
        elif target == node_id:
            self.error(node_id, f"{field}.fallback", "a node cannot be its own fallback")
        elif target in self.owners:
            self.error(
                node_id,
                f"{field}.fallback",
                f"node {target!r} is already the fallback of {self.owners[target]!r}; a node can back up only one other node",
            )
        elif spec is not None:
            self.owners[target] = spec.node_id
            spec.on_error = "fallback"
            spec.fallback = target

    # -------------------------------------------------------------------------------------- edges

    def _compile_edges(self, raw_edges: Any) -> None:
        if not isinstance(raw_edges, list):
            return
        seen: dict[tuple[str, str], int] = {}
        for index, raw in enumerate(raw_edges):
            if not isinstance(raw, dict):
                continue
            source, target = raw.get("from"), raw.get("to")
            prefix = f"edges[{index}]"
            valid = True
            for key, value in (("from", source), ("to", target)):
                if not isinstance(value, str):
                    valid = False
                elif value not in self.specs:
                    anchor = source if key == "to" and source in self.specs else None
                    self.error(anchor, f"{prefix}.{key}", f"edge refers to unknown node {value!r}")
                    valid = False
            when = None
            if isinstance(raw.get("when"), str):
                when = self._expression(source if source in self.specs else None, f"{prefix}.when", raw["when"])
            if not valid:
                continue
            assert isinstance(source, str) and isinstance(target, str)
            if source == target:
                self.error(
                    source,
                    prefix,
                    f"self-loop: node {source!r} depends on itself (cycle {source} -> {source})",
                )
                continue
            if (source, target) in seen:
                first = seen[(source, target)]
                self.error(source, prefix, f"duplicate edge {source!r} -> {target!r} (same as edges[{first}])")
                continue
            seen[(source, target)] = index
            if target in self.owners:
                self.error(
                    target,
                    f"{prefix}.to",
                    f"fallback node {target!r} (the fallback of {self.owners[target]!r}) must not have incoming edges",
                )
            self.edges.append(_EdgeSpec(index, source, target, when))

    def _expression(self, node: str | None, field: str, source: Any) -> Expression | None:
        try:
            return compile_expression(source, budget=2 * self.limits.max_payload_bytes, fanout=self.limits.max_fanout)
        except ValueError as exc:
            self.error(node, field, str(exc))
            return None

    # -------------------------------------------------------------------------------------- graph

    def _successors(self) -> dict[str, list[str]]:
        """Scheduling dependencies: edges plus the implicit owner -> fallback link."""
        succ: dict[str, list[str]] = {node_id: [] for node_id in self.specs}
        for edge in self.edges:
            succ[edge.source].append(edge.target)
        for node_id, spec in self.specs.items():
            if spec.fallback is not None:
                succ[node_id].append(spec.fallback)
        return succ

    def _analyse_graph(self) -> tuple[list[str] | None, dict[str, set[str]] | None]:
        """Report cycles and nodes that can never run; returns (topological order, visible sets)."""
        succ = self._successors()
        index = {node_id: spec.index for node_id, spec in self.specs.items()}
        cyclic: set[str] = set()
        for component in _strongly_connected(succ, index):
            if len(component) > 1:
                cyclic.update(component)
                self._report_cycle(component, succ, index)
        has_incoming = {edge.target for edge in self.edges}
        roots = [n for n in self.specs if n not in has_incoming and n not in self.owners]
        reached = set(roots)
        queue = deque(roots)
        while queue:
            for nxt in succ[queue.popleft()]:
                if nxt not in reached:
                    reached.add(nxt)
                    queue.append(nxt)
        for node_id in sorted(set(self.specs) - reached - cyclic, key=index.__getitem__):
            self.error(
                node_id,
                f"nodes[{index[node_id]}]",
                f"node {node_id!r} can never run: it is only reachable through a cycle",
            )
        if cyclic:
            return None, None
        order = _topological_order(succ, index)
        return order, self._visible_sets(order)

    def _report_cycle(self, component: set[str], succ: dict[str, list[str]], index: dict[str, int]) -> None:
        start = min(component, key=index.__getitem__)
        parent: dict[str, str] = {}
        queue = deque([start])
        last = None
        while queue and last is None:
            current = queue.popleft()
            for nxt in succ[current]:
                if nxt == start:
                    last = current
                    break
                if nxt in component and nxt not in parent:
                    parent[nxt] = current
                    queue.append(nxt)
        path = [start]
        node = last
        while node is not None and node != start:
            path.append(node)
            node = parent.get(node)
        path = [start, *reversed(path[1:])]
        chain = " -> ".join([*path, start])
        field = "edges"
        first_hop = (path[0], path[1] if len(path) > 1 else start)
        for edge in self.edges:
            if (edge.source, edge.target) == first_hop:
                field = f"edges[{edge.index}]"
                break
        else:
            field = f"nodes[{index[first_hop[0]]}].on_error"
        self.error(start, field, f"cycle detected: {chain}")

    def _visible_sets(self, order: list[str]) -> dict[str, set[str]]:
        """For each node, the nodes guaranteed to have settled (output or null) before it runs."""
        chains: dict[str, set[str]] = {}
        for node_id in reversed(order):
            target = self.specs[node_id].fallback
            chains[node_id] = set() if target is None else {target, *chains[target]}
        preds: dict[str, list[str]] = {node_id: [] for node_id in self.specs}
        for edge in self.edges:
            preds[edge.target].append(edge.source)
        visible: dict[str, set[str]] = {}
        for node_id in order:
            seen: set[str] = set()
            for pred in preds[node_id]:
                seen |= visible[pred]
                seen.add(pred)
                seen |= chains[pred]
            owner = self.owners.get(node_id)
            if owner is not None:
                seen |= visible[owner]
                seen.add(owner)
            visible[node_id] = seen
        self.chains = chains
        return visible

    def _check_references(self, visible: dict[str, set[str]] | None) -> None:
        for node_id, spec in self.specs.items():
            for field, ref in spec.refs:
                if ref not in self.specs:
                    self.error(node_id, field, f"references unknown node {ref!r}")
                elif visible is not None and ref not in visible[node_id]:
                    self._not_upstream(node_id, field, ref, node_id)
        for edge in self.edges:
            if edge.when is None:
                continue
            field = f"edges[{edge.index}].when"
            for ref in sorted(edge.when.refs):
                if ref not in self.specs:
                    self.error(edge.source, field, f"references unknown node {ref!r}")
                elif visible is not None:
                    allowed = visible[edge.source] | {edge.source} | self.chains[edge.source]
                    if ref not in allowed:
                        self._not_upstream(edge.source, field, ref, edge.source)

    def _not_upstream(self, node_id: str, field: str, ref: str, reader: str) -> None:
        if ref == reader:
            self.error(node_id, field, f"node {reader!r} cannot read its own output")
        else:
            self.error(
                node_id,
                field,
                f"references node {ref!r}, which is not guaranteed to finish before {reader!r}; "
                f"add an edge from {ref!r} (directly or through other nodes)",
            )

    # ------------------------------------------------------------------------------------ outputs

    def _compile_outputs(self, raw_outputs: Any) -> tuple[tuple[str, Expression], ...]:
        if not isinstance(raw_outputs, dict):
            return ()
        compiled = []
        for name, source in raw_outputs.items():
            if not isinstance(source, str) or not name:
                continue
            field = format_path(["outputs", name])
            expression = self._expression(None, field, source)
            if expression is None:
                continue
            for ref in sorted(expression.refs):
                if ref not in self.specs:
                    self.error(None, field, f"references unknown node {ref!r}")
            compiled.append((name, expression))
        return tuple(compiled)

    # -------------------------------------------------------------------------------------- build

    def _build(self, order: list[str], visible: dict[str, set[str]]) -> list[CompiledNode]:
        built: dict[str, CompiledNode] = {}
        position = {node_id: i for i, node_id in enumerate(order)}
        for node_id in order:
            spec = self.specs[node_id]
            assert spec.node_type is not None
            attempts, backoff_s, multiplier = spec.retry
            node = CompiledNode(
                node_id=node_id,
                node_type=spec.node_type,
                config=spec.compiled,
                attempts=attempts,
                backoff_s=backoff_s,
                multiplier=multiplier,
                timeout_s=spec.timeout_s,
                on_error=spec.on_error,
                view=tuple(sorted(visible[node_id], key=position.__getitem__)),
            )
            node.index = position[node_id]
            built[node_id] = node
        out_edges: dict[str, list[Edge]] = {node_id: [] for node_id in order}
        for edge in sorted(self.edges, key=lambda e: e.index):
            target = built[edge.target]
            view: tuple[str, ...] = ()
            if edge.when is not None:
                seen = visible[edge.source] | {edge.source} | self.chains[edge.source]
                view = tuple(sorted(seen, key=position.__getitem__))
            out_edges[edge.source].append(Edge(built[edge.source], target, edge.when, view))
            target.in_degree += 1
        for node_id, node in built.items():
            node.out_edges = tuple(out_edges[node_id])
            fallback = self.specs[node_id].fallback
            if fallback is not None:
                node.fallback = built[fallback]
                built[fallback].is_fallback = True
        return [built[node_id] for node_id in order]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_DEFINITION_KEYS = frozenset({"inputs", "nodes", "edges", "outputs"})
_NODE_KEYS = frozenset({"id", "type", "config", "retry", "timeout_s", "on_error"})
_RETRY_KEYS = frozenset({"attempts", "backoff_s", "multiplier"})
_EDGE_KEYS = frozenset({"from", "to", "when"})


def _shape_is_valid(definition: dict[str, Any]) -> bool:
    """True only if `definition` certainly satisfies _DEFINITION_SCHEMA (False means "ask jsonschema").

    jsonschema costs tens of microseconds per node; this walk costs about one and covers the
    definitions people actually write. It may answer False for valid oddities (3.0 attempts).
    """
    if not _DEFINITION_KEYS.issuperset(definition):
        return False
    if "inputs" in definition and type(definition["inputs"]) is not dict:
        return False
    nodes = definition.get("nodes")
    if type(nodes) is not list or not nodes:
        return False
    for node in nodes:
        if type(node) is not dict or not _NODE_KEYS.issuperset(node):
            return False
        if type(node.get("id")) is not str or type(node.get("type")) is not str:
            return False
        if "config" in node and type(node["config"]) is not dict:
            return False
        if "timeout_s" in node:
            timeout = node["timeout_s"]
            if type(timeout) not in (int, float) or not timeout > 0:
                return False
        if "retry" in node:
            retry = node["retry"]
            if type(retry) is not dict or not _RETRY_KEYS.issuperset(retry):
                return False
            attempts = retry.get("attempts")
            if type(attempts) is not int or not 1 <= attempts <= 10:
                return False
            if "backoff_s" in retry and (type(retry["backoff_s"]) not in (int, float) or not retry["backoff_s"] >= 0):
                return False
            if "multiplier" in retry and (type(retry["multiplier"]) not in (int, float) or not retry["multiplier"] >= 1):
                return False
    if "edges" in definition:
        edges = definition["edges"]
        if type(edges) is not list:
            return False
        for edge in edges:
            if type(edge) is not dict or not _EDGE_KEYS.issuperset(edge):
                return False
            if type(edge.get("from")) is not str or type(edge.get("to")) is not str:
                return False
            if "when" in edge and type(edge["when"]) is not str:
                return False
    if "outputs" in definition:
        outputs = definition["outputs"]
        if type(outputs) is not dict:
            return False
        for name, source in outputs.items():
            if type(name) is not str or not name or type(source) is not str:
                return False
    return True


def _schema_refs(schema: Any, path: list[str | int]) -> list[tuple[list[str | int], str]]:
    found: list[tuple[list[str | int], str]] = []
    stack: list[tuple[Any, list[str | int]]] = [(schema, path)]
    while stack:
        value, where = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ("$ref", "$dynamicRef") and isinstance(child, str):
                    found.append(([*where, key], child))
                else:
                    stack.append((child, [*where, key]))
        elif isinstance(value, list):
            stack.extend((child, [*where, i]) for i, child in enumerate(value))
    return found


def _strongly_connected(succ: dict[str, list[str]], index: dict[str, int]) -> list[set[str]]:
    """Tarjan's algorithm, iterative so deep graphs cannot hit the recursion limit."""
    counter = 0
    low: dict[str, int] = {}
    number: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    for root in sorted(succ, key=index.__getitem__):
        if root in number:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child_pos = work.pop()
            if child_pos == 0:
                number[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = succ[node]
            for pos in range(child_pos, len(children)):
                child = children[pos]
                if child not in number:
                    work.append((node, pos + 1))
                    work.append((child, 0))
                    break
                if child in on_stack:
                    low[node] = min(low[node], number[child])
            else:
                if low[node] == number[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return components


def _topological_order(succ: dict[str, list[str]], index: dict[str, int]) -> list[str]:
    """Kahn's algorithm; ties broken by position in the definition so the order is deterministic."""
    indegree = dict.fromkeys(succ, 0)
    for targets in succ.values():
        for target in targets:
            indegree[target] += 1
    heap = [(index[n], n) for n, degree in indegree.items() if degree == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        _, node = heapq.heappop(heap)
        order.append(node)
        for target in succ[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(heap, (index[target], target))
    return order
