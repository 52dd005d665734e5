"""Dataset writes: upload (JSON rows or CSV text; replace or append) and delete."""

import csv
import io
import json
import math
import re
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from apps.accounts.access import require
from apps.audit.recorder import audit_record
from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.datasets.models import ColumnType, Dataset, DatasetRow
from apps.datasets.selectors import dataset_get

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
MODES = ("replace", "append")
MAX_COLUMNS = 500
MAX_FIELD_NAME = 200
MAX_DESCRIPTION = 2000
# Enough to show what is wrong without echoing a whole bad file back.
MAX_REPORTED_ERRORS = 20
INSERT_BATCH = 2000

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CSV_INTEGER = re.compile(r"-?(?:0|[1-9][0-9]{0,99})")
_CSV_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_SCALARS = (str, int, float, bool)


def max_rows() -> int:
    return getattr(settings, "NEXUS_DATASET_MAX_ROWS", 100_000)


def max_bytes() -> int:
    return getattr(settings, "NEXUS_DATASET_MAX_BYTES", 20 * 1024 * 1024)


def _path(index: int, key: str) -> str:
    return f"rows[{index}].{key}" if _IDENTIFIER.match(key) else f"rows[{index}][{json.dumps(key, ensure_ascii=False)}]"


def _kind(value) -> str:
    if value is None:
        return ColumnType.NULL
    if isinstance(value, bool):  # before int: bool is an int subclass
        return ColumnType.BOOLEAN
    if isinstance(value, int):
        return ColumnType.INTEGER
    if isinstance(value, float):
        return ColumnType.NUMBER
    return ColumnType.STRING


def _merge_type(left: str, right: str) -> str:
    """The narrowest type that holds both; numbers widen to `number`, anything else mixed is text."""
    if left == right or right == ColumnType.NULL:
        return left
    if left == ColumnType.NULL:
        return right
    if {left, right} == {ColumnType.INTEGER, ColumnType.NUMBER}:
        return ColumnType.NUMBER
    return ColumnType.STRING


def _merge_columns(old: list[dict], old_count: int, new: list[dict], new_count: int) -> list[dict]:
    """Columns of `old_count` stored rows plus `new_count` appended ones: a column that one side lacks is nullable."""
    appended = {c["name"]: c for c in new}
    merged = []
    for column in old:
        other = appended.pop(column["name"], None)
        if other is None:
            merged.append(dict(column, nullable=column["nullable"] or new_count > 0))
        else:
            merged.append(
                {
                    "name": column["name"],
                    "type": _merge_type(column["type"], other["type"]),
                    "nullable": column["nullable"] or other["nullable"],
                }
            )
    merged.extend(dict(column, nullable=column["nullable"] or old_count > 0) for column in appended.values())
    return merged


def _csv_value(text: str):
    """CSV cells are text: empty is null, true/false are booleans, numeric-looking text is a number.
    Integers with leading zeros ("007", zip codes) stay text: converting them would lose the zeros."""
    if text == "":
        return None
    lowered = text.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if _CSV_INTEGER.fullmatch(text):
        return int(text)
    if _CSV_NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def _malformed_csv(detail: str, fields: dict) -> ValidationFailed:
    return ValidationFailed(detail, code="malformed_csv", fields=fields)


def rows_from_csv(csv_text: str, *, limit_rows: int, limit_bytes: int) -> list[dict]:
    """Parse CSV text with a header row into flat objects; a short or long row is an error, not a guess."""
    if not isinstance(csv_text, str):
        raise _malformed_csv("CSV must be text", {"csv": "must be text"})
    if len(csv_text.encode("utf-8", "surrogatepass")) > limit_bytes:
        raise ValidationFailed(f"the CSV text is larger than {limit_bytes} bytes", fields={"csv": f"at most {limit_bytes} bytes"})
    reader = csv.reader(io.StringIO(csv_text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise _malformed_csv("the CSV text is empty", {"csv": "expected a header row naming the columns"})
        names = [name.strip() for name in header]
        for number, name in enumerate(names, start=1):
            if not name:
                raise _malformed_csv(f"column {number} of the header has no name", {"csv": f"column {number} has no name"})
            if names.index(name) != number - 1:
                raise _malformed_csv(f"column '{name}' appears twice in the header", {"csv": f"column '{name}' appears twice"})
        rows: list[dict] = []
        errors: dict[str, str] = {}
        for values in reader:
            if not values:  # a blank line
                continue
            if len(values) != len(names):
                errors[f"rows[{len(rows)}]"] = f"line {reader.line_num}: {len(values)} values, the header has {len(names)}"
                if len(errors) >= MAX_REPORTED_ERRORS:
                    break
            rows.append(dict(zip(names, map(_csv_value, values), strict=False)))
            if len(rows) > limit_rows:
                raise ValidationFailed(f"more than {limit_rows} rows", fields={"rows": f"at most {limit_rows} rows"})
    except csv.Error as error:
        raise _malformed_csv(
            f"malformed CSV at line {reader.line_num}: {error}", {"csv": f"line {reader.line_num}: {error}"}
        ) from None
    if errors:
        raise _malformed_csv("some CSV rows do not match the header", errors)
    return rows


def check_rows(rows, *, limit_rows: int, limit_bytes: int) -> tuple[list[dict], int]:
    """Validate rows (a non-empty list of flat objects with scalar values, within the limits) and infer
    their columns in one pass. Returns (columns, size in bytes as stored JSON)."""
    if not isinstance(rows, list):
        raise ValidationFailed("rows must be a list of objects", fields={"rows": "must be a list of objects"})
    if not rows:
        raise ValidationFailed("rows must not be empty", fields={"rows": "must contain at least one row"})
    if len(rows) > limit_rows:
        raise ValidationFailed(f"more than {limit_rows} rows", fields={"rows": f"at most {limit_rows} rows"})
    errors: dict[str, str] = {}
    types: dict[str, str] = {}
    nullable: dict[str, bool] = {}
    seen: dict[str, int] = {}
    size = 0
    for index, row in enumerate(rows):
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
        if not isinstance(row, dict):
            errors[f"rows[{index}]"] = "must be an object"
            continue
        if not row:
            errors[f"rows[{index}]"] = "must have at least one field"
            continue
        good = True
        for key, value in row.items():
            if not isinstance(key, str) or not 0 < len(key) <= MAX_FIELD_NAME or "\x00" in key:
                errors[f"rows[{index}]"] = f"field names must be 1-{MAX_FIELD_NAME} characters"
                good = False
                break
            if value is not None and not isinstance(value, _SCALARS):
                errors[_path(index, key)] = "must be a string, number, boolean or null (no nested objects or lists)"
                good = False
            elif isinstance(value, float) and not math.isfinite(value):
                errors[_path(index, key)] = "must be a finite number"
                good = False
            elif isinstance(value, str) and "\x00" in value:
                errors[_path(index, key)] = "must not contain NUL characters"
                good = False
        if not good:
            continue
        try:
            size += len(json.dumps(row, ensure_ascii=False, allow_nan=False).encode())
        except (UnicodeEncodeError, ValueError):  # lone surrogates; integers too long to print
            errors[f"rows[{index}]"] = "holds text that is not valid Unicode or a number too large to store"
            continue
        if size > limit_bytes:
            raise ValidationFailed(
                f"the rows are larger than {limit_bytes} bytes", fields={"rows": f"at most {limit_bytes} bytes"}
            )
        for key, value in row.items():
            kind = _kind(value)
            if key in seen:
                seen[key] += 1
                types[key] = _merge_type(types[key], kind)
            else:
                if len(seen) >= MAX_COLUMNS:
                    errors[f"rows[{index}]"] = f"more than {MAX_COLUMNS} distinct fields in the dataset"
                    break
                seen[key] = 1
                types[key] = kind
                nullable[key] = index > 0  # earlier rows lack it
            if kind == ColumnType.NULL:
                nullable[key] = True
    if errors:
        raise ValidationFailed("some rows are invalid", fields=errors)
    columns = [
        {"name": name, "type": types[name], "nullable": nullable[name] or count < len(rows)} for name, count in seen.items()
    ]
    return columns, size


def _check_name(name) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name) or name.startswith("ds_"):
        raise ValidationFailed(
            "invalid dataset name",
            fields={
                "name": "1-63 characters: lower-case letters, digits, '_' and '-', starting with a letter or digit, not 'ds_'"
            },
        )


def _locked_or_new(*, name: str, description: str | None, actor: str) -> Dataset:
    """The dataset row locked for this upload, inserted first if missing. Two first uploads racing on one
    name both end here: the loser's insert is a no-op and it waits for the winner's lock."""
    candidate = Dataset(id=new_id("ds"), name=name, description=description or "", created_by=actor)
    Dataset.objects.bulk_create([candidate], ignore_conflicts=True)
    return Dataset.objects.select_for_update().get(name=name)


def _insert(dataset: Dataset, rows: Iterable[dict], *, start: int) -> None:
    batch: list[DatasetRow] = []
    for position, data in enumerate(rows, start=start):
        batch.append(DatasetRow(dataset_id=dataset.id, position=position, data=data))
        if len(batch) == INSERT_BATCH:
            DatasetRow.objects.bulk_create(batch)
            batch = []
    if batch:
        DatasetRow.objects.bulk_create(batch)


def dataset_upload(
    *,
    principal: Principal,
    tenant_id: int,
    name: str,
    rows: list | None = None,
    csv_text: str | None = None,
    mode: str = "replace",
    description: str | None = None,
) -> Dataset:
    """Create the dataset `name` or replace (or append to) its rows; all or nothing. `description=None`
    keeps the current description."""
    require(principal, "dataset.write", tenant_id=tenant_id)
    _check_name(name)
    if mode not in MODES:
        raise ValidationFailed("invalid upload mode", fields={"mode": "'replace' or 'append'"})
    if description is not None and (not isinstance(description, str) or len(description) > MAX_DESCRIPTION):
        raise ValidationFailed("invalid description", fields={"description": f"text of at most {MAX_DESCRIPTION} characters"})
    if (rows is None) == (csv_text is None):
        raise ValidationFailed("give rows or CSV text", fields={"rows": "give a list of rows or CSV text (one of them)"})
    limit_rows, limit_bytes = max_rows(), max_bytes()
    if csv_text is not None:
        rows = rows_from_csv(csv_text, limit_rows=limit_rows, limit_bytes=limit_bytes)
    assert rows is not None  # one of rows and csv_text was given (checked above)
    columns, size = check_rows(rows, limit_rows=limit_rows, limit_bytes=limit_bytes)

    with transaction.atomic():
        dataset = _locked_or_new(name=name, description=description, actor=principal.actor)
        if mode == "append" and dataset.row_count:
            if dataset.row_count + len(rows) > limit_rows:
                raise ValidationFailed(
                    f"appending would make {dataset.row_count + len(rows)} rows",
                    fields={"rows": f"at most {limit_rows} rows in a dataset ({dataset.row_count} stored)"},
                )
            if dataset.size_bytes + size > limit_bytes:
                raise ValidationFailed(
                    f"appending would make the dataset larger than {limit_bytes} bytes",
                    fields={"rows": f"at most {limit_bytes} bytes in a dataset ({dataset.size_bytes} stored)"},
                )
            start = dataset.row_count
            dataset.columns = _merge_columns(dataset.columns, dataset.row_count, columns, len(rows))
            dataset.row_count += len(rows)
            dataset.size_bytes += size
        else:
            DatasetRow.objects.filter(dataset=dataset).delete()
            start = 0
            dataset.columns = columns
            dataset.row_count = len(rows)
            dataset.size_bytes = size
        if description is not None:
            dataset.description = description
        _insert(dataset, rows, start=start)
        dataset.save(update_fields=["columns", "row_count", "size_bytes", "description", "updated_at"])
        audit_record(
            action="dataset.uploaded",
            tenant_id=tenant_id,
            principal=principal,
            target=dataset.id,
            details={"name": dataset.name, "mode": mode, "rows": len(rows), "row_count": dataset.row_count},
        )
    return dataset


def dataset_delete(*, principal: Principal, tenant_id: int, ref: str) -> Dataset:
    dataset = dataset_get(principal=principal, tenant_id=tenant_id, ref=ref, action="dataset.write")
    with transaction.atomic():
        DatasetRow.objects.filter(dataset=dataset).delete()
        Dataset.objects.filter(pk=dataset.pk).delete()
        audit_record(
            action="dataset.deleted",
            tenant_id=tenant_id,
            principal=principal,
            target=dataset.id,
            details={"name": dataset.name, "row_count": dataset.row_count},
        )
    return dataset
