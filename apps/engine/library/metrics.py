"""The `metrics` node: count, sum, mean, extremes, median, standard deviation and percentiles over rows."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import NodeError
from ..expressions import Expression
from ..registry import CompileContext, NodeType, RunContext
from .common import is_number, json_type, rows_from

METRICS = ("count", "sum", "mean", "min", "max", "median", "stddev", "p50", "p90", "p95", "p99")
_NEEDS_SORT = frozenset({"median", "p50", "p90", "p95", "p99"})
_PERCENTILES = {"median": 50.0, "p50": 50.0, "p90": 90.0, "p95": 95.0, "p99": 99.0}


@dataclass(frozen=True, slots=True)
class _MetricsConfig:
    rows: Expression
    field: str | None
    metrics: tuple[str, ...]
    group_by: str | None


def _compile(config: dict[str, Any], ctx: CompileContext) -> _MetricsConfig | None:
    rows = ctx.expression("rows", config["rows"])
    field = config.get("field")
    metrics = tuple(config.get("metrics") or (METRICS if field is not None else ("count",)))
    if field is None:
        needing = [name for name in metrics if name != "count"]
        if needing:
            ctx.error("field", f"a numeric field is required for {', '.join(needing)}")
            return None
    if rows is None:
        return None
    return _MetricsConfig(rows, field, metrics, config.get("group_by"))


def percentile(ordered: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy.percentile's default, method="linear").

    The rank of percentile `p` in n sorted values is ``p / 100 * (n - 1)``; a fractional rank
    interpolates between its two neighbours.
    """
    rank = p / 100.0 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    fraction = rank - low
    value = ordered[low] + (ordered[high] - ordered[low]) * fraction
    return float(value)


def summarize(values: list[Any], rows: int, metrics: tuple[str, ...], has_field: bool) -> dict[str, Any]:
    """The requested metrics over `values` (numbers); empty input gives count 0, sum 0 and nulls."""
    out: dict[str, Any] = {}
    n = len(values)
    total: Any = None
    if any(name in ("sum", "mean", "stddev") for name in metrics):
        total = sum(values) if all(type(v) is int for v in values) else math.fsum(values)
    ordered = sorted(values) if n and _NEEDS_SORT.intersection(metrics) else values
    for name in metrics:
        if name == "count":
            out[name] = n if has_field else rows
        elif name == "sum":
            out[name] = total
        elif n == 0:
            out[name] = None
        elif name == "mean":
            out[name] = total / n
        elif name == "min":
            out[name] = min(values)
        elif name == "max":
            out[name] = max(values)
        elif name == "stddev":
            mean = total / n
            out[name] = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)
        else:
            out[name] = percentile(ordered, _PERCENTILES[name])
    for name, value in out.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise NodeError("not_finite", f"metric {name} overflowed to {value}", retryable=False)
    return out


def _group_key(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    raise NodeError("invalid_group", f"group_by values must be strings, numbers, booleans or null, not {json_type(value)}")


def _run(config: _MetricsConfig, ctx: RunContext) -> dict[str, Any]:
    rows = rows_from(config.rows, ctx, "metrics rows")
    field = config.field
    # key -> (row count, values); dicts keep first-seen order, so output order follows the data.
    groups: dict[str | None, tuple[list[int], list[Any]]] = {}
    for index, row in enumerate(rows):
        key = _group_key(row.get(config.group_by)) if config.group_by is not None else None
        group = groups.get(key)
        if group is None:
            group = groups[key] = ([0], [])
        group[0][0] += 1
        if field is None:
            continue
        value = row.get(field)
        if value is None:
            continue  # missing and null values are skipped, as SQL aggregates skip NULL
        if not is_number(value):
            raise NodeError(
                "not_numeric",
                f"row [{index}] field {field!r} is {json_type(value)} ({str(value)[:40]!r}), not a number",
                retryable=False,
            )
        group[1].append(value)
    has_field = field is not None
    if config.group_by is None:
        counter, values = groups.get(None, ([0], []))
        return summarize(values, counter[0], config.metrics, has_field)
    if len(groups) > ctx.limits.max_fanout:
        raise NodeError("fanout_exceeded", f"{len(groups)} groups; the limit is {ctx.limits.max_fanout}", retryable=False)
    return {
        "groups": {key: summarize(values, counter[0], config.metrics, has_field) for key, (counter, values) in groups.items()}
    }


METRICS_NODE = NodeType(
    name="metrics",
    description=(
        "Compute summary statistics of a numeric field over a list of rows, overall or per group. "
        "Missing and null values are skipped (as SQL aggregates skip NULL); any other non-number is an error. "
        "Percentiles use linear interpolation between closest ranks (numpy.percentile's default): "
        "the rank of p in n sorted values is p/100 × (n − 1). `stddev` is the population standard deviation "
        "(divides by n, numpy.std's default). With no values, `count` and `sum` are 0 and the other metrics null."
    ),
    config_schema={
        "type": "object",
        "additionalProperties": False,
        "required": ["rows"],
        "properties": {
            "rows": {
                "type": "string",
                "minLength": 1,
                "description": "JMESPath expression yielding the list of row objects (null counts as no rows).",
            },
            "field": {
                "type": "string",
                "minLength": 1,
                "description": "Key of the numeric value in each row. Optional when only `count` is asked for.",
            },
            "metrics": {
                "type": "array",
                "minItems": 1,
                "uniqueItems": True,
                "items": {"enum": list(METRICS)},
                "description": 'Which metrics to compute, in output order. Default: all of them with `field`, ["count"] without.',
            },
            "group_by": {
                "type": "string",
                "minLength": 1,
                "description": 'Key to group rows by; the output is then {"groups": {<value>: {metrics}}} '
                "(values as strings: null, true/false and numbers spelled as in JSON).",
            },
        },
    },
    compile=_compile,
    run=_run,
    pure=True,
    output=(
        'An object with the requested metrics, e.g. `{"count": 3, "sum": 35, "mean": 11.67, "p90": 19.0}`; '
        '`count` is the number of values (of rows without `field`). With `group_by`: `{"groups": {"books": {...}, '
        '"toys": {...}}}`, groups in order of first appearance.'
    ),
    errors={
        "not_numeric": "a row's `field` holds something other than a number or null (the message names the row index)",
        "not_a_list": "`rows` did not yield a list",
        "not_an_object": "an item of `rows` is not an object",
        "fanout_exceeded": "more rows than `max_fanout`",
        "invalid_group": "a `group_by` value is an object or a list",
        "not_finite": "a sum or mean overflowed",
    },
    example={
        "id": "stats",
        "type": "metrics",
        "config": {"rows": "inputs.orders", "field": "amount", "metrics": ["count", "sum", "mean", "p95"], "group_by": "region"},
    },
)
