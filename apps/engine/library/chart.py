"""The `chart` node: renders rows as a bar, line, pie or scatter chart (SVG or PNG) and stores it as an artifact."""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any, cast

from jinja2 import Template

from ..errors import NodeError
from ..expressions import Expression
from ..registry import CompileContext, NodeType, RunContext
from .common import call_port, expect_object, is_number, json_type, render, rows_from

_CONTENT_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
_DPI = 100
_MAX_NAME = 200
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]+")


@dataclass(frozen=True, slots=True)
class _ChartConfig:
    rows: Expression
    kind: str
    x: str
    y: tuple[str, ...]
    title: Template | None
    format: str
    name: Template | None
    width: int
    height: int


def _compile(config: dict[str, Any], ctx: CompileContext) -> _ChartConfig | None:
    rows = ctx.expression("rows", config["rows"])
    y = config["y"]
    fields = (y,) if isinstance(y, str) else tuple(y)
    kind = config["kind"]
    if kind == "pie" and len(fields) != 1:
        ctx.error("y", "a pie chart shows exactly one y field")
    title = ctx.template("title", config["title"]) if "title" in config else None
    name = ctx.template("name", config["name"]) if "name" in config else None
    if rows is None or ctx.errors:
        return None
    return _ChartConfig(
        rows=rows,
        kind=kind,
        x=config["x"],
        y=fields,
        title=title,
        format=config.get("format", "svg"),
        name=name,
        width=config.get("width", 800),
        height=config.get("height", 450),
    )


def _number(row: dict[str, Any], field: str, index: int) -> float:
    value = row.get(field)
    if value is None:
        return math.nan  # a gap in lines and scatters, no bar, no wedge
    if not is_number(value):
        raise NodeError(
            "not_numeric",
            f"row [{index}] field {field!r} is {json_type(value)} ({str(value)[:40]!r}), not a number",
            retryable=False,
        )
    return float(value)


def _label(value: Any) -> str:
    if value is None:
        return "null"
    return value if isinstance(value, str) else str(value)


def _artifact_name(config: _ChartConfig, ctx: RunContext) -> str:
    name = render(config.name, ctx) if config.name is not None else f"{ctx.node_id}.{config.format}"
    # A name, not a path: separators and control characters become "_".
    name = _UNSAFE_NAME.sub("_", name).strip()
    if not name or name in (".", ".."):
        raise NodeError("invalid_name", "the artifact name rendered empty", retryable=False)
    return name[:_MAX_NAME]


def render_chart(config: _ChartConfig, rows: list[dict[str, Any]], title: str) -> bytes:
    """Draw with matplotlib's object-oriented API (no pyplot global state, so concurrent renders are safe)."""
    # Imported here: matplotlib takes a third of a second to import and most runs never draw.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    xs = [row.get(config.x) for row in rows]
    series = [[_number(row, field, index) for index, row in enumerate(rows)] for field in config.y]
    figure = Figure(figsize=(config.width / _DPI, config.height / _DPI), dpi=_DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if config.kind == "pie":
        values = series[0]
        if any(v < 0 for v in values if not math.isnan(v)):
            raise NodeError("invalid_chart_data", "a pie chart cannot show negative values", retryable=False)
        shown = [(_label(x), v) for x, v in zip(xs, values, strict=True) if not math.isnan(v) and v > 0]
        if shown:
            axes.pie([v for _, v in shown], labels=[label for label, _ in shown], autopct="%1.1f%%")
        axes.set_aspect("equal")
    else:
        numeric_x = config.kind in ("line", "scatter") and all(is_number(x) for x in xs)
        positions: list[Any] = [float(cast(float, x)) for x in xs] if numeric_x else list(range(len(xs)))
        width = 0.8 / len(series)
        for number, (field, values) in enumerate(zip(config.y, series, strict=True)):
            if config.kind == "bar":
                offset = (number - (len(series) - 1) / 2) * width
                axes.bar([p + offset for p in positions], values, width=width, label=field)
            elif config.kind == "line":
                axes.plot(positions, values, marker="o", label=field)
            else:
                axes.scatter(positions, values, label=field)
        if not numeric_x:
            axes.set_xticks(
                positions, [_label(x) for x in xs], rotation=45 if len(xs) > 8 else 0, ha="right" if len(xs) > 8 else "center"
            )
        axes.set_xlabel(config.x)
        axes.set_ylabel(config.y[0] if len(config.y) == 1 else "")
        if len(config.y) > 1:
            axes.legend()
        axes.grid(True, axis="y", alpha=0.3)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    # No timestamps in the file, so the same data gives the same PNG bytes.
    metadata = {"Date": None} if config.format == "svg" else {"Software": None}
    figure.savefig(buffer, format=config.format, metadata=metadata)
    return buffer.getvalue()


def _run(config: _ChartConfig, ctx: RunContext) -> dict[str, Any]:
    rows = rows_from(config.rows, ctx, "chart rows")
    title = render(config.title, ctx) if config.title is not None else ""
    name = _artifact_name(config, ctx)
    ctx.port("artifacts")  # fail before drawing when there is nowhere to put the result
    try:
        data = render_chart(config, rows, title)
    except NodeError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:
        raise NodeError("invalid_chart_data", f"could not draw the chart: {exc}", retryable=False) from None
    stored = call_port(ctx, "artifacts", "store", name=name, content_type=_CONTENT_TYPES[config.format], data=data)
    return expect_object(stored, "artifacts", "store")


CHART_NODE = NodeType(
    name="chart",
    description=(
        "Render rows as a bar, line, pie or scatter chart with matplotlib (Agg, object-oriented API) "
        "and store the image through the run's `artifacts` service."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["rows", "kind", "x", "y"],
        "properties": {
            "rows": {
                "type": "string",
                "minLength": 1,
                "description": "JMESPath expression yielding the list of row objects (at most `max_fanout`).",
            },
            "kind": {"enum": ["bar", "line", "pie", "scatter"], "description": "Chart type."},
            "x": {
                "type": "string",
                "minLength": 1,
                "description": "Key of the x value (category labels for bar and pie; numbers or labels for line and scatter).",
            },
            "y": {
                "description": "Key of the numeric y value, or a list of keys for several series (one for pie). "
                "Null values leave a gap.",
                "oneOf": [
                    {"type": "string", "minLength": 1},
                    {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 10,
                        "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1},
                    },
                ],
            },
            "title": {"type": "string", "maxLength": 500, "description": "Jinja template for the chart title."},
            "format": {"enum": ["svg", "png"], "default": "svg", "description": "Image format."},
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "Jinja template for the artifact file name; default `<node id>.<format>`. "
                "Slashes and control characters become `_`.",
            },
            "width": {"type": "integer", "minimum": 100, "maximum": 4000, "default": 800, "description": "Width in pixels."},
            "height": {"type": "integer", "minimum": 100, "maximum": 4000, "default": 450, "description": "Height in pixels."},
        },
    },
    compile=_compile,
    run=_run,
    pure=False,
    cpu_light=False,
    output=(
        'What the artifacts service returns for the stored image, e.g. `{"id": "art_…", "name": "revenue.png", '
        '"content_type": "image/png", "size": 18234}`. Pass it (or its `id`) to an `email` node\'s `attachments`.'
    ),
    errors={
        "not_numeric": "a y value is not a number or null (the message names the row index)",
        "invalid_chart_data": "matplotlib could not draw the data (e.g. negative pie values)",
        "invalid_name": "the artifact name rendered empty",
        "not_a_list": "`rows` did not yield a list",
        "not_an_object": "an item of `rows` is not an object",
        "fanout_exceeded": "more rows than `max_fanout`",
        "port_unavailable": "the run has no `artifacts` service",
        "port_error": "the artifacts service failed",
    },
    example={
        "id": "chart",
        "type": "chart",
        "config": {
            "rows": "nodes.fetch.rows",
            "kind": "bar",
            "x": "name",
            "y": "revenue",
            "title": "Revenue by customer",
            "format": "png",
            "name": "revenue-{{ inputs.month }}.png",
        },
    },
)
