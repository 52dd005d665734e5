"""The one JSON shape of a dataset, shared by every channel."""

from typing import Any

from apps.core.dates import iso_utc
from apps.datasets.models import Dataset


def dataset_data(dataset: Dataset, *, preview: list[dict] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": dataset.id,
        "name": dataset.name,
        "description": dataset.description,
        "columns": dataset.columns,
        "row_count": dataset.row_count,
        "size_bytes": dataset.size_bytes,
        "created_by": dataset.created_by,
        "created_at": iso_utc(dataset.created_at),
        "updated_at": iso_utc(dataset.updated_at),
    }
    if preview is not None:
        data["preview"] = preview
    return data
