"""A dataset query (filters, group_by, aggregates, order_by, limit) compiled to one parameterised SELECT.

Security: nothing from the query is ever written into the SQL text. Field names are checked against the
dataset's columns and then passed as bound parameters (`data ->> %s`); values are bound parameters;
operators and functions come from fixed tables here; output names are mapped back in Python. Columns
are referred to in GROUP BY / ORDER BY by their position, so no caller-chosen alias reaches the SQL.
"""

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from apps.core.errors import ValidationFailed
from apps.datasets.models import ColumnType, Dataset, DatasetRow

OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains")
FUNCTIONS = ("count", "sum", "avg", "min", "max")
MAX_LIMIT = 10_000
MAX_IN_VALUES = 1000
_COMPARISONS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
_NUMERIC = (ColumnType.INTEGER, ColumnType.NUMBER)
_TABLE = DatasetRow._meta.db_table


def _json(field: str) -> tuple[str, list]:
    return "(data -> %s::text)", [field]


def _text(field: str) -> tuple[str, list]:
    return "(data ->> %s::text)", [field]


def _numeric(field: str) -> tuple[str, list]:
    return "((data ->> %s::text)::numeric)", [field]


def _boolean(field: str) -> tuple[str, list]:
    return "((data ->> %s::text)::boolean)", [field]


def _typed(column: dict) -> tuple[str, list]:
    """The field as its column's type, so numbers order and compare as numbers, not as text."""
    if column["type"] in _NUMERIC:
        return _numeric(column["name"])
    if column["type"] == ColumnType.BOOLEAN:
        return _boolean(column["name"])
    return _text(column["name"])


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value):
    """numeric → int when PostgreSQL wrote no fractional digits, else float (sum of 1 and 2 is 3; of 1.5 and 2 is 3.5)."""
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else float(value)
    return value


def _float(value):
    return None if value is None else float(value)


def _load_json(value):
    # Django registers a text loader for jsonb on psycopg 3 connections: JSON arrives as its text.
    return None if value is None else json.loads(value)


def _invalid(field: str, reason: str, detail: str | None = None) -> ValidationFailed:
    return ValidationFailed(detail or f"invalid query: {field} {reason}", fields={field: reason})


def _unknown(field: str, name, dataset: Dataset, reason: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        f"unknown field '{name}'",
        code="unknown_field",
        fields={field: reason or f"dataset '{dataset.name}' has no column '{name}'"},
    )


def _keys(item, where: str, allowed: tuple[str, ...]) -> dict:
    if not isinstance(item, dict):
        raise _invalid(where, f"must be an object with {', '.join(allowed)}")
    for key in item:
        if key not in allowed:
            raise _invalid(f"{where}.{key}", f"unknown key; expected {', '.join(allowed)}")
    return item


def _list(value, where: str) -> list:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise _invalid(where, "must be a list")
    return list(value)


class CompiledQuery:
    def __init__(self, sql: str, params: list, outputs: list[tuple[str, Callable]] | None, columns: list[str]):
        self.sql = sql
        self.params = params
        # None: plain rows (one JSONB document each); else one (name, decode) per selected column.
        self.outputs = outputs
        self.columns = columns

    def rows(self, records: list[tuple]) -> list[dict[str, Any]]:
        if self.outputs is None:
            result = []
            for (document,) in records:
                data = _load_json(document)
                result.append({name: data.get(name) for name in self.columns})
            return result
        return [{name: decode(value) for (name, decode), value in zip(self.outputs, record, strict=True)} for record in records]


class _Compiler:
    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self.columns = {c["name"]: c for c in dataset.columns}

    def column(self, name, where: str) -> dict:
        if name is None:
            raise _invalid(where, "required")
        if not isinstance(name, str) or name not in self.columns:
            raise _unknown(where, name, self.dataset)
        return self.columns[name]

    def check_equal_value(self, column: dict, value, where: str) -> None:
        if value is not None and not isinstance(value, (str, bool, int, float)):
            raise _invalid(where, "must be a string, number, boolean or null")
        if isinstance(value, float) and not math.isfinite(value):
            raise _invalid(where, "must be a finite number")
        if value is None or column["type"] in (ColumnType.STRING, ColumnType.NULL):
            return  # a text column may hold mixed values: compare exactly, whatever the type
        if column["type"] in _NUMERIC and not _is_number(value):
            raise _invalid(where, f"must be a number: column '{column['name']}' holds numbers")
        if column["type"] == ColumnType.BOOLEAN and not isinstance(value, bool):
            raise _invalid(where, f"must be true or false: column '{column['name']}' holds booleans")

    def condition(self, item, index: int) -> tuple[str, list]:
        where = f"filters[{index}]"
        item = _keys(item, where, ("field", "op", "value"))
        column = self.column(item.get("field"), f"{where}.field")
        op = item.get("op", "eq")
        if op not in OPS:
            raise _invalid(f"{where}.op", f"one of {', '.join(OPS)}")
        if "value" not in item:
            raise _invalid(f"{where}.value", "required")
        value = item["value"]
        name = column["name"]
        if op in ("eq", "ne"):
            if value is None:
                sql, params = _text(name)
                return f"{sql} IS {'' if op == 'eq' else 'NOT '}NULL", params
            self.check_equal_value(column, value, f"{where}.value")
            sql, params = _json(name)
            # jsonb equality is type-exact (5 = 5.0, but 5 != "5"); `ne` keeps rows where the field is null.
            return f"{sql} {'=' if op == 'eq' else 'IS DISTINCT FROM'} %s::jsonb", [*params, json.dumps(value)]
        if op == "in":
            if not isinstance(value, list) or not 0 < len(value) <= MAX_IN_VALUES:
                raise _invalid(f"{where}.value", f"must be a list of 1 to {MAX_IN_VALUES} values")
            for position, candidate in enumerate(value):
                self.check_equal_value(column, candidate, f"{where}.value[{position}]")
            present = [json.dumps(v) for v in value if v is not None]
            parts, params = [], []
            if present:
                sql, field_params = _json(name)
                parts.append(f"{sql} IN ({', '.join(['%s::jsonb'] * len(present))})")
                params += [*field_params, *present]
            if len(present) < len(value):
                sql, field_params = _text(name)
                parts.append(f"{sql} IS NULL")
                params += field_params
            return f"({' OR '.join(parts)})", params
        if op == "contains":
            if not isinstance(value, str) or not value:
                raise _invalid(f"{where}.value", "must be non-empty text")
            sql, params = _text(name)
            return f"strpos({sql}, %s::text) > 0", [*params, value]
        # lt, lte, gt, gte: numbers against a numeric column, text against a text column.
        if column["type"] in _NUMERIC or (column["type"] == ColumnType.NULL and _is_number(value)):
            if not _is_number(value):
                raise _invalid(f"{where}.value", f"must be a number: column '{name}' holds numbers")
            sql, params = _numeric(name)
            return f"{sql} {_COMPARISONS[op]} %s::numeric", [*params, str(value)]
        if column["type"] in (ColumnType.STRING, ColumnType.NULL):
            if not isinstance(value, str):
                raise _invalid(f"{where}.value", f"must be text: column '{name}' holds text")
            sql, params = _text(name)
            return f"{sql} {_COMPARISONS[op]} %s::text", [*params, value]
        raise _invalid(f"{where}.op", f"'{op}' does not apply to column '{name}' of booleans; use eq, ne or in")

    def aggregate(self, item, index: int) -> tuple[str, list, str, Callable]:
        where = f"aggregates[{index}]"
        item = _keys(item, where, ("fn", "field", "as"))
        function = item.get("fn")
        if function not in FUNCTIONS:
            raise _invalid(f"{where}.fn", f"one of {', '.join(FUNCTIONS)}")
        field = item.get("field")
        params: list[Any]
        decode: Callable[[Any], Any]
        if function == "count" and field is None:
            sql, params, default_name, decode = "count(*)", [], "count", int
        else:
            column = self.column(field, f"{where}.field")
            kind = column["type"]
            default_name = f"{function}_{field}"
            if function == "count":
                sql, params = _text(field)
                sql, decode = f"count({sql})", int
            elif function in ("sum", "avg"):
                if kind not in (*_NUMERIC, ColumnType.NULL):
                    raise _invalid(f"{where}.field", f"{function} needs a column of numbers; '{field}' holds {kind} values")
                sql, params = _numeric(field)
                sql, decode = f"{function}({sql})", _number if function == "sum" else _float
            elif kind == ColumnType.BOOLEAN:  # min/max of booleans: false < true
                sql, params = _boolean(field)
                sql, decode = f"{'bool_and' if function == 'min' else 'bool_or'}({sql})", lambda v: v
            else:
                sql, params = _typed(column)
                sql, decode = f"{function}({sql})", _number if kind in _NUMERIC else (lambda v: v)
        name = item.get("as", default_name)
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            raise _invalid(f"{where}.as", "must be a name of 1-200 characters")
        return sql, params, name, decode

    def order(self, item, index: int) -> tuple[str, bool]:
        where = f"order_by[{index}]"
        if isinstance(item, str):
            return item, False
        item = _keys(item, where, ("field", "desc"))
        descending = item.get("desc", False)
        if not isinstance(descending, bool):
            raise _invalid(f"{where}.desc", "must be true or false")
        if item.get("field") is None:
            raise _invalid(f"{where}.field", "required")
        return item["field"], descending


def compile_query(dataset: Dataset, *, filters=(), group_by=(), aggregates=(), order_by=(), limit: int = 1000) -> CompiledQuery:
    compiler = _Compiler(dataset)
    filters, group_by = _list(filters, "filters"), _list(group_by, "group_by")
    aggregates, order_by = _list(aggregates, "aggregates"), _list(order_by, "order_by")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise _invalid("limit", f"a whole number from 1 to {MAX_LIMIT}")

    where_sql, where_params = ["dataset_id = %s"], [dataset.id]
    for index, item in enumerate(filters):
        sql, params = compiler.condition(item, index)
        where_sql.append(sql)
        where_params += params

    if not group_by and not aggregates:
        order_sql, order_params = [], []
        for index, item in enumerate(order_by):
            name, descending = compiler.order(item, index)
            sql, params = _typed(
                compiler.column(name, f"order_by[{index}]" if isinstance(item, str) else f"order_by[{index}].field")
            )
            order_sql.append(f"{sql} {'DESC' if descending else 'ASC'} NULLS LAST")
            order_params += params
        order_sql.append("position")
        sql = (
            f"SELECT data FROM {_TABLE} WHERE {' AND '.join(where_sql)}"  # noqa: S608 (model metadata and fixed fragments only)
            f" ORDER BY {', '.join(order_sql)} LIMIT %s"
        )
        return CompiledQuery(sql, [*where_params, *order_params, limit], None, [c["name"] for c in dataset.columns])

    select_sql: list[str] = []
    select_params: list[Any] = []
    outputs: list[Any] = []
    for index, name in enumerate(group_by):
        column = compiler.column(name, f"group_by[{index}]")
        if column["name"] in (output for output, _ in outputs):
            raise _invalid(f"group_by[{index}]", f"'{name}' is already grouped")
        sql, params = _json(column["name"])
        # A missing field and an explicit null are one group.
        select_sql.append(f"NULLIF({sql}, 'null'::jsonb)")
        select_params += params
        outputs.append((column["name"], _load_json))
    for index, item in enumerate(aggregates):
        sql, params, name, decode = compiler.aggregate(item, index)
        if name in (output for output, _ in outputs):
            raise _invalid(f"aggregates[{index}].as", f"'{name}' is already an output name; choose another with 'as'")
        select_sql.append(sql)
        select_params += params
        outputs.append((name, decode))

    names = [name for name, _ in outputs]
    order_sql = []
    for index, item in enumerate(order_by):
        name, descending = compiler.order(item, index)
        if name not in names:
            raise _unknown(
                f"order_by[{index}]" if isinstance(item, str) else f"order_by[{index}].field",
                name,
                dataset,
                reason=f"a grouped query orders by its outputs: {', '.join(names)}",
            )
        order_sql.append(f"{names.index(name) + 1} {'DESC' if descending else 'ASC'} NULLS LAST")
    group_sql = ", ".join(str(position) for position in range(1, len(group_by) + 1))
    if not order_sql and group_sql:
        order_sql = [f"{position} ASC NULLS LAST" for position in range(1, len(group_by) + 1)]
    sql = f"SELECT {', '.join(select_sql)} FROM {_TABLE} WHERE {' AND '.join(where_sql)}"  # noqa: S608 (as above)
    if group_sql:
        sql += f" GROUP BY {group_sql}"
    if order_sql:
        sql += f" ORDER BY {', '.join(order_sql)}"
    sql += " LIMIT %s"
    return CompiledQuery(sql, [*select_params, *where_params, limit], outputs, names)
