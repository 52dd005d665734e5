"""The `dataset_query` node: a read-only, structured query of a tenant dataset through the `datasets` service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Template

from ..errors import NodeError
from ..registry import CompileContext, NodeType, RunContext
from .common import call_port, compile_json_templates, render, render_json

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains")
AGGREGATES = ("count", "sum", "avg", "min", "max")
# Field and alias names are identifiers so the service can map them to columns without quoting games.
_IDENTIFIER = {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,62}$"}


@dataclass(frozen=True, slots=True)
class _QueryConfig:
    dataset: Template
    filters: tuple[tuple[str, str, Any], ...]
    group_by: tuple[str, ...]
    aggregates: tuple[dict[str, str], ...]
    order_by: tuple[dict[str, Any], ...]
    limit: int


def _compile(config: dict[str, Any], ctx: CompileContext) -> _QueryConfig | None:
    limit = config.get("limit", ctx.limits.max_fanout)
    if limit > ctx.limits.max_fanout:
        ctx.error("limit", f"{limit} is greater than the maximum of {ctx.limits.max_fanout} rows")
    dataset = ctx.template("dataset", config["dataset"])
    filters = []
    for index, item in enumerate(config.get("filters", ())):
        if item["op"] == "in" and not isinstance(item["value"], list):
            ctx.error(f"filters[{index}].value", 'the "in" operator needs a list value')
        filters.append((item["field"], item["op"], compile_json_templates(ctx, f"filters[{index}].value", item["value"])))
    aggregates = []
    names: set[str] = set()
    group_by = tuple(config.get("group_by", ()))
    for index, item in enumerate(config.get("aggregates", ())):
        fn = item["fn"]
        field = item.get("field")
        if fn == "count" and field is not None:
            ctx.error(f"aggregates[{index}].field", "count counts rows and takes no field")
        elif fn != "count" and field is None:
            ctx.error(f"aggregates[{index}].field", f"{fn} needs a field")
        alias = item.get("as") or (fn if field is None else f"{fn}_{field}")
        if alias in names or alias in group_by:
            ctx.error(f"aggregates[{index}].as", f"duplicate output column {alias!r}")
        names.add(alias)
        aggregates.append({"fn": fn, **({"field": field} if field is not None else {}), "as": alias})
    if dataset is None or ctx.errors:
        return None
    order_by = tuple({"field": item["field"], "desc": bool(item.get("desc", False))} for item in config.get("order_by", ()))
    return _QueryConfig(dataset, tuple(filters), group_by, tuple(aggregates), order_by, limit)


def _run(config: _QueryConfig, ctx: RunContext) -> dict[str, Any]:
    dataset = render(config.dataset, ctx).strip()
    if not dataset:
        raise NodeError("invalid_dataset", "the dataset name rendered empty", retryable=False)
    filters = [{"field": field, "op": op, "value": render_json(value, ctx)} for field, op, value in config.filters]
    rows = call_port(
        ctx,
        "datasets",
        "query",
        dataset=dataset,
        filters=filters,
        group_by=list(config.group_by),
        aggregates=[dict(item) for item in config.aggregates],
        order_by=[dict(item) for item in config.order_by],
        limit=config.limit,
    )
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise NodeError("port_error", "the 'datasets' service did not return a list of row objects", retryable=False)
    rows = rows[: config.limit]
    return {"rows": rows, "count": len(rows)}


DATASET_QUERY_NODE = NodeType(
    name="dataset_query",
    description=(
        "Read rows from one of the tenant's datasets (read-only) through the run's `datasets` service: "
        "filters, optional grouping with aggregates, ordering and a row limit."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["dataset"],
        "properties": {
            "dataset": {
                "type": "string",
                "minLength": 1,
                "maxLength": 500,
                "description": "Jinja template for the dataset name.",
            },
            "filters": {
                "type": "array",
                "maxItems": 50,
                "description": "Conditions every returned row satisfies (AND).",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["field", "op", "value"],
                    "properties": {
                        "field": {**_IDENTIFIER, "description": "Column to test."},
                        "op": {
                            "enum": list(OPERATORS),
                            "description": "eq, ne, lt, lte, gt, gte; `in` (value is a list); `contains` (substring).",
                        },
                        "value": {"description": "Value to compare with; strings (also inside lists) are Jinja templates."},
                    },
                },
            },
            "group_by": {
                "type": "array",
                "maxItems": 10,
                "uniqueItems": True,
                "items": _IDENTIFIER,
                "description": "Columns to group by; each output row has these columns plus the aggregates "
                "(without aggregates: the distinct combinations).",
            },
            "aggregates": {
                "type": "array",
                "maxItems": 20,
                "description": "Aggregates to compute (over all matching rows, or per group).",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["fn"],
                    "properties": {
                        "fn": {"enum": list(AGGREGATES), "description": "Aggregate function."},
                        "field": {**_IDENTIFIER, "description": "Column to aggregate (not for count)."},
                        "as": {**_IDENTIFIER, "description": "Output column name; default `<fn>_<field>` (`count` for count)."},
                    },
                },
            },
            "order_by": {
                "type": "array",
                "maxItems": 10,
                "description": "Sort keys, first one first.",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["field"],
                    "properties": {
                        "field": {**_IDENTIFIER, "description": "Column (or aggregate alias) to sort by."},
                        "desc": {"type": "boolean", "default": False, "description": "Sort descending."},
                    },
                },
            },
            "limit": {
                "type": "integer",
                "minimum": 1,
                "description": "Most rows to return; at most `max_fanout` (1000 by default), which is also the default.",
            },
        },
    },
    compile=_compile,
    run=_run,
    pure=False,
    output='`{"rows": [{...}, ...], "count": <number of rows>}`.',
    errors={
        "dataset_not_found": "raised by the datasets service: no dataset of that name in this tenant",
        "invalid_dataset": "the dataset name rendered empty",
        "port_unavailable": "the run has no `datasets` service",
        "port_error": "the datasets service failed or returned something other than a list of objects",
    },
    example={
        "id": "fetch",
        "type": "dataset_query",
        "config": {
            "dataset": "customers",
            "filters": [{"field": "country", "op": "eq", "value": "{{ inputs.country }}"}],
            "order_by": [{"field": "revenue", "desc": True}],
            "limit": 100,
        },
        "on_error": {"fallback": "no_data"},
    },
)
