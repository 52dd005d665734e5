"""Dataset reads, inside the current tenant schema: list, one dataset, a page of rows, and the read-only query."""

from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, transaction

from apps.accounts.access import require
from apps.core.errors import ApplicationError, NotFound, ValidationFailed
from apps.core.principal import Principal
from apps.datasets.models import Dataset, DatasetRow
from apps.datasets.query import compile_query

MAX_PAGE = 1000
_QUERY_CANCELED = "57014"


def _find(ref) -> Dataset:
    if not isinstance(ref, str) or not ref:
        raise ValidationFailed("give a dataset name or id", fields={"dataset": "a dataset name or ds_ id"})
    dataset = (Dataset.objects.filter(id=ref) if ref.startswith("ds_") else Dataset.objects.filter(name=ref)).first()
    if dataset is None:
        raise NotFound(f"dataset '{ref}' does not exist", code="dataset_not_found")
    return dataset


def dataset_get(*, principal: Principal, tenant_id: int, ref: str, action: str = "dataset.read") -> Dataset:
    require(principal, action, tenant_id=tenant_id)
    return _find(ref)


def dataset_list(*, principal: Principal, tenant_id: int) -> list[Dataset]:
    require(principal, "dataset.read", tenant_id=tenant_id)
    return list(Dataset.objects.order_by("name"))


def dataset_rows(
    *, principal: Principal, tenant_id: int, ref: str, limit: int = 100, offset: int = 0
) -> tuple[Dataset, list[dict[str, Any]]]:
    """The dataset and a page of its rows in upload order, each with every column (missing ones as null)."""
    dataset = dataset_get(principal=principal, tenant_id=tenant_id, ref=ref)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_PAGE:
        raise ValidationFailed("limit out of range", fields={"limit": f"between 0 and {MAX_PAGE}"})
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationFailed("offset out of range", fields={"offset": "0 or more"})
    if limit == 0:
        return dataset, []
    names = [c["name"] for c in dataset.columns]
    documents = DatasetRow.objects.filter(dataset=dataset).order_by("position").values_list("data", flat=True)
    return dataset, [{name: data.get(name) for name in names} for data in documents[offset : offset + limit]]


class QueryTimedOut(ApplicationError):
    status = 503
    code = "query_timeout"


class _Discard(Exception):
    """Raised to roll back the read-only block once its rows are fetched."""


def dataset_query(
    *,
    principal: Principal,
    tenant_id: int,
    dataset: str,
    filters=(),
    group_by=(),
    aggregates=(),
    order_by=(),
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Filter, group, aggregate and order a dataset's rows in SQL for a caller holding `dataset.read`; returns a
    list of objects."""
    require(principal, "dataset.read", tenant_id=tenant_id)
    return dataset_query_for_run(
        dataset=dataset, filters=filters, group_by=group_by, aggregates=aggregates, order_by=order_by, limit=limit
    )


def dataset_query_for_run(
    *, dataset: str, filters=(), group_by=(), aggregates=(), order_by=(), limit: int = 1000
) -> list[dict[str, Any]]:
    """`dataset_query` without an access check, for a workflow run (authorised when it started) in the current
    schema. The query runs inside a block that PostgreSQL itself holds read-only and bounds by
    NEXUS_DATASET_QUERY_TIMEOUT_MS; the block is then rolled back, which also undoes both settings, nested in a
    transaction or not.
    """
    found = _find(dataset)
    compiled = compile_query(found, filters=filters, group_by=group_by, aggregates=aggregates, order_by=order_by, limit=limit)
    timeout_ms = int(getattr(settings, "NEXUS_DATASET_QUERY_TIMEOUT_MS", 10_000))
    records: list[tuple] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', %s, true)",
                [str(timeout_ms)],
            )
            cursor.execute(compiled.sql, compiled.params)
            records = cursor.fetchall()
            raise _Discard
    except _Discard:
        pass
    except OperationalError as error:
        if getattr(error.__cause__, "sqlstate", None) == _QUERY_CANCELED:
            raise QueryTimedOut(f"the query on dataset '{found.name}' took longer than {timeout_ms} ms") from None
        raise
    return compiled.rows(records)
