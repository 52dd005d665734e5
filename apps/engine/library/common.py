"""Helpers shared by library node types: row lists, JSON-with-templates, rendering and port calls."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from ..errors import NodeError, RunInterrupted
from ..expressions import Expression, render_template
from ..registry import CompileContext, RunContext

_TEMPLATE_MARKERS = ("{{", "{%", "{#")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_number(value: Any) -> bool:
    """A JSON number: int or finite float, never a boolean."""
    kind = type(value)
    return kind is int or (kind is float and math.isfinite(value))


def rows_from(expression: Expression, ctx: RunContext, what: str) -> list[dict[str, Any]]:
    """Evaluate `expression` to a list of objects of at most ``limits.max_fanout`` items."""
    rows = expression.search(ctx.data)
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise NodeError("not_a_list", f"{what} {expression.source!r} must yield a list, got {json_type(rows)}", retryable=False)
    if len(rows) > ctx.limits.max_fanout:
        raise NodeError(
            "fanout_exceeded",
            f"{what} yielded {len(rows)} rows; the limit is {ctx.limits.max_fanout}",
            retryable=False,
        )
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise NodeError("not_an_object", f"{what} row [{index}] is {json_type(row)}, not an object", retryable=False)
    return rows


def render(template: Template, ctx: RunContext) -> str:
    return render_template(
        template,
        ctx.data,
        max_chars=ctx.limits.max_payload_bytes,
        deadline=ctx.deadline,
        max_iterations=ctx.limits.max_template_iterations,
    )


@dataclass(frozen=True, slots=True)
class _Literal:
    value: Any


def compile_json_templates(ctx: CompileContext, field: str, value: Any) -> Any:
    """Compile a JSON value whose strings may be Jinja templates; returns a tree for `render_json`.

    Strings without template markers stay literal, so a constant body costs nothing to "render".
    """
    if isinstance(value, str):
        if any(marker in value for marker in _TEMPLATE_MARKERS):
            return ctx.template(field, value)
        return _Literal(value)
    if isinstance(value, dict):
        return {key: compile_json_templates(ctx, f"{field}.{key}" if field else key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [compile_json_templates(ctx, f"{field}[{index}]", item) for index, item in enumerate(value)]
    return _Literal(value)


def render_json(compiled: Any, ctx: RunContext) -> Any:
    if isinstance(compiled, _Literal):
        return compiled.value
    if isinstance(compiled, Template):
        return render(compiled, ctx)
    if isinstance(compiled, dict):
        return {key: render_json(item, ctx) for key, item in compiled.items()}
    if isinstance(compiled, list):
        return [render_json(item, ctx) for item in compiled]
    return compiled


def call_port(ctx: RunContext, port_name: str, method: str, /, **kwargs: Any) -> Any:
    """Call ``ctx.ports[port_name].<method>(**kwargs)``; NodeErrors pass through, other failures become port_error."""
    port = ctx.port(port_name)
    ctx.check()
    try:
        return getattr(port, method)(**kwargs)
    except (NodeError, RunInterrupted):
        raise
    except Exception as exc:
        text = str(exc)
        detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        raise NodeError("port_error", f"the {port_name!r} service failed in {method}(): {detail}") from None


def expect_object(value: Any, name: str, method: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise NodeError(
            "port_error",
            f"the {name!r} service returned {json_type(value)} from {method}(), not an object",
            retryable=False,
        )
    return value
