"""Core node types (template, transform, filter, condition, merge, delay) and the default registry with the library."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from .errors import NodeError
from .expressions import Expression, is_truthy, render_template
from .library.chart import CHART_NODE
from .library.common import json_type
from .library.datasets import DATASET_QUERY_NODE
from .library.http import HTTP_REQUEST_NODE
from .library.messaging import EMAIL_NODE, NOTIFY_NODE
from .library.metrics import METRICS_NODE
from .library.subworkflow import SUBWORKFLOW_NODE
from .registry import CompileContext, NodeRegistry, NodeType, RunContext

__all__ = ["BUILTIN_NODE_TYPES", "default_registry"]


# ---------------------------------------------------------------------------------------- template


@dataclass(frozen=True, slots=True)
class _TemplateConfig:
    template: Template
    parse_json: bool


def _compile_template(config: dict[str, Any], ctx: CompileContext) -> _TemplateConfig | None:
    template = ctx.template("template", config["template"])
    if template is None:
        return None
    return _TemplateConfig(template, config.get("output", "text") == "json")


def _run_template(config: _TemplateConfig, ctx: RunContext) -> Any:
    text = render_template(
        config.template,
        ctx.data,
        max_chars=ctx.limits.max_payload_bytes,
        deadline=ctx.deadline,
        max_iterations=ctx.limits.max_template_iterations,
    )
    if not config.parse_json:
        return text
    try:
        return json.loads(text)
    except ValueError as exc:
        raise NodeError("invalid_json", f"rendered template is not valid JSON: {exc}", retryable=False) from None


TEMPLATE = NodeType(
    name="template",
    description="Render a sandboxed Jinja template over `inputs` and `nodes`.",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["template"],
        "properties": {
            "template": {"type": "string", "description": "Jinja template (sandboxed; undefined values are errors)."},
            "output": {
                "enum": ["text", "json"],
                "default": "text",
                "description": "`text` outputs the rendered string; `json` parses it as JSON.",
            },
        },
    },
    compile=_compile_template,
    run=_run_template,
    pure=True,
    output='The rendered string, or the JSON value it parses to with `"output": "json"`.',
    errors={
        "template_undefined": "the template uses a value that does not exist",
        "template_error": "rendering failed (type errors, too deep recursion, ...)",
        "template_budget_exceeded": "the template ran more than `max_template_iterations` loop iterations",
        "sandbox_violation": "the template tried something the sandbox forbids",
        "invalid_json": 'with `"output": "json"`, the rendered text is not JSON',
    },
    example={"id": "greet", "type": "template", "config": {"template": "Hello, {{ inputs.name }}!"}},
)


# --------------------------------------------------------------------------------------- transform


@dataclass(frozen=True, slots=True)
class _TransformConfig:
    expression: Expression | None
    mapping: tuple[tuple[str, Expression], ...] | None


def _compile_transform(config: dict[str, Any], ctx: CompileContext) -> _TransformConfig | None:
    has_expression, has_mapping = "expression" in config, "mapping" in config
    if has_expression == has_mapping:
        ctx.error("", "exactly one of 'expression' or 'mapping' is required")
        return None
    if has_expression:
        expression = ctx.expression("expression", config["expression"])
        return None if expression is None else _TransformConfig(expression, None)
    compiled = [(key, ctx.expression(f"mapping.{key}", source)) for key, source in config["mapping"].items()]
    if any(expression is None for _, expression in compiled):
        return None
    return _TransformConfig(None, tuple(compiled))  # type: ignore[arg-type]


def _run_transform(config: _TransformConfig, ctx: RunContext) -> Any:
    if config.expression is not None:
        return config.expression.search(ctx.data)
    data = ctx.data
    return {key: expression.search(data) for key, expression in config.mapping or ()}


TRANSFORM = NodeType(
    name="transform",
    description="Evaluate a JMESPath expression (or a mapping of them) over `inputs` and `nodes`.",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "expression": {"type": "string", "minLength": 1, "description": "JMESPath expression; its value is the output."},
            "mapping": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": {"type": "string", "minLength": 1},
                "description": "Output object: each key's value is a JMESPath expression. Exactly one of "
                "`expression` and `mapping`.",
            },
        },
    },
    compile=_compile_transform,
    run=_run_transform,
    pure=True,
    output="Whatever the expression yields (any JSON value), or an object with the mapping's keys.",
    errors={"expression_error": "the expression failed at run time (e.g. a function got the wrong type)"},
    example={
        "id": "normalise",
        "type": "transform",
        "config": {"expression": "inputs.rows[].{id: id, category: category || 'uncategorised', amount: amount}"},
    },
)


# ------------------------------------------------------------------------------------------ filter


@dataclass(frozen=True, slots=True)
class _FilterConfig:
    items: Expression
    where: Expression


def _compile_filter(config: dict[str, Any], ctx: CompileContext) -> _FilterConfig | None:
    items = ctx.expression("items", config["items"])
    # `where` runs against each item (`@`), not the run context, so `nodes.x` there is item data.
    where = ctx.expression("where", config["where"], check_refs=False)
    if items is None or where is None:
        return None
    return _FilterConfig(items, where)


def _run_filter(config: _FilterConfig, ctx: RunContext) -> list[Any]:
    items = config.items.search(ctx.data)
    if not isinstance(items, list):
        raise NodeError(
            "not_a_list",
            f"filter items {config.items.source!r} must yield a list, got {json_type(items)}",
            retryable=False,
        )
    if len(items) > ctx.limits.max_fanout:
        raise NodeError(
            "fanout_exceeded",
            f"filter received {len(items)} items; the limit is {ctx.limits.max_fanout}",
            retryable=False,
        )
    where = config.where
    return [item for item in items if is_truthy(where.search(item))]


FILTER = NodeType(
    name="filter",
    description="Keep the items of a list for which a JMESPath condition (over each item) is truthy.",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["items", "where"],
        "properties": {
            "items": {"type": "string", "minLength": 1, "description": "JMESPath expression yielding the list to filter."},
            "where": {
                "type": "string",
                "minLength": 1,
                "description": "JMESPath condition evaluated against each item (`@`); truthy keeps the item.",
            },
        },
    },
    compile=_compile_filter,
    run=_run_filter,
    pure=True,
    output="The list of kept items, in their original order.",
    errors={
        "not_a_list": "`items` did not yield a list",
        "fanout_exceeded": "the list is longer than `max_fanout`",
        "expression_error": "an expression failed at run time",
    },
    example={"id": "clean", "type": "filter", "config": {"items": "inputs.rows", "where": "amount >= `0`"}},
)


# --------------------------------------------------------------------------------------- condition


def _compile_condition(config: dict[str, Any], ctx: CompileContext) -> Expression | None:
    return ctx.expression("expression", config["expression"])


def _run_condition(expression: Expression, ctx: RunContext) -> dict[str, bool]:
    return {"value": is_truthy(expression.search(ctx.data))}


CONDITION = NodeType(
    name="condition",
    description='Evaluate a JMESPath expression to {"value": bool}; branch with `when` on edges.',
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["expression"],
        "properties": {
            "expression": {
                "type": "string",
                "minLength": 1,
                "description": "JMESPath expression; JMESPath truthiness gives the value.",
            }
        },
    },
    compile=_compile_condition,
    run=_run_condition,
    pure=True,
    output='`{"value": true}` or `{"value": false}`; branch on it with `"when": "nodes.<id>.value"` on edges.',
    errors={"expression_error": "the expression failed at run time"},
    example={"id": "check", "type": "condition", "config": {"expression": "inputs.amount > `100`"}},
)


# ------------------------------------------------------------------------------------------- merge


@dataclass(frozen=True, slots=True)
class _MergeConfig:
    sources: tuple[str, ...]
    mode: str


def _compile_merge(config: dict[str, Any], ctx: CompileContext) -> _MergeConfig:
    for index, source in enumerate(config["from"]):
        ctx.reference(f"from[{index}]", source)
    return _MergeConfig(tuple(config["from"]), config.get("mode", "object"))


def _deep_merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    # Builds new dicts along merged paths so upstream outputs are never mutated.
    merged = dict(base)
    for key, value in other.items():
        current = merged.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            merged[key] = _deep_merge(current, value)
        else:
            merged[key] = value
    return merged


def _run_merge(config: _MergeConfig, ctx: RunContext) -> Any:
    nodes = ctx.nodes
    if config.mode == "list":
        return [nodes.get(source) for source in config.sources]
    if config.mode == "object":
        return {source: nodes.get(source) for source in config.sources}
    merged: dict[str, Any] = {}
    for source in config.sources:
        value = nodes.get(source)
        if value is None:
            # Skipped and continued-after-error nodes contribute nothing.
            continue
        if not isinstance(value, dict):
            raise NodeError(
                "merge_type_error",
                f"deep merge needs object outputs; {source!r} produced {json_type(value)}",
                retryable=False,
            )
        merged = _deep_merge(merged, value)
    return merged


MERGE = NodeType(
    name="merge",
    description="Combine the outputs of upstream nodes into an object, a list or a deep-merged object.",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["from"],
        "properties": {
            "from": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"type": "string"},
                "description": "Ids of upstream nodes to combine (each must have a path of edges to this node).",
            },
            "mode": {
                "enum": ["object", "list", "deep"],
                "default": "object",
                "description": "`object`: {id: output}; `list`: [outputs in `from` order]; `deep`: the object "
                "outputs deep-merged, later ones winning (null outputs contribute nothing).",
            },
        },
    },
    compile=_compile_merge,
    run=_run_merge,
    pure=True,
    output="An object keyed by node id, a list, or one deep-merged object (by `mode`). Skipped nodes appear as null.",
    errors={"merge_type_error": "in `deep` mode, an output is neither an object nor null"},
    example={"id": "join", "type": "merge", "config": {"from": ["stats", "by_category"], "mode": "object"}},
)


# ------------------------------------------------------------------------------------------- delay


def _compile_delay(config: dict[str, Any], ctx: CompileContext) -> float:
    seconds = config["seconds"]
    if seconds > ctx.limits.max_delay_seconds:
        ctx.error("seconds", f"{seconds} is greater than the maximum delay of {ctx.limits.max_delay_seconds} s")
    return seconds


def _run_delay(seconds: float, ctx: RunContext) -> dict[str, float]:
    ctx.sleep(seconds)
    return {"slept_s": seconds}


DELAY = NodeType(
    name="delay",
    description="Wait a number of seconds (cancellable, bounded by the run deadline).",
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["seconds"],
        "properties": {
            "seconds": {
                "type": "number",
                "minimum": 0,
                "description": "How long to wait; at most `max_delay_seconds` (60 by default).",
            }
        },
    },
    compile=_compile_delay,
    run=_run_delay,
    pure=False,
    output='`{"slept_s": <seconds>}`.',
    errors={},
    example={"id": "wait", "type": "delay", "config": {"seconds": 2}},
)


CORE_NODE_TYPES: tuple[NodeType, ...] = (TEMPLATE, TRANSFORM, FILTER, CONDITION, MERGE, DELAY)
LIBRARY_NODE_TYPES: tuple[NodeType, ...] = (
    HTTP_REQUEST_NODE,
    METRICS_NODE,
    CHART_NODE,
    DATASET_QUERY_NODE,
    EMAIL_NODE,
    NOTIFY_NODE,
    SUBWORKFLOW_NODE,
)
BUILTIN_NODE_TYPES: tuple[NodeType, ...] = CORE_NODE_TYPES + LIBRARY_NODE_TYPES

default_registry = NodeRegistry(BUILTIN_NODE_TYPES)
