"""REST API for datasets: list, upload (JSON rows or a CSV body), show, page rows, query, delete."""

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.response import Response

from apps.api.base import ERRORS, TenantApiView
from apps.api.serializers import (
    MAX_OFFSET,
    DatasetListSerializer,
    DatasetSerializer,
    ErrorSerializer,
    QueryResultSerializer,
    RequestSerializer,
    RowsSerializer,
    StrictSerializer,
    documented_json,
    documented_string,
)
from apps.core.errors import ValidationFailed
from apps.datasets.query import FUNCTIONS, OPS
from apps.datasets.query import MAX_LIMIT as MAX_QUERY_LIMIT
from apps.datasets.representation import dataset_data
from apps.datasets.selectors import dataset_list, dataset_query, dataset_rows
from apps.datasets.services import NAME_RE, dataset_delete, dataset_upload, max_bytes

DatasetNameField = documented_string("DatasetNameField", pattern=NAME_RE.pattern, maxLength=63)
# A row is a flat object: each value a string, a number, a boolean or null.
RowsField = documented_json(
    "RowsField",
    type="array",
    minItems=1,
    items={
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {"nullable": True, "anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
    },
)
PREVIEW_ROWS = 20
# A JSON body spells rows with quotes, commas and spaces the stored form drops: allow it that much more.
JSON_BODY_FACTOR = 2


class CsvTextParser(BaseParser):
    """`text/csv` bodies, as text for the service to parse (a body over the dataset size cap is refused unread)."""

    media_type = "text/csv"

    # The stubs type parse() as returning a mapping; DRF puts whatever a parser returns into request.data.
    def parse(self, stream, media_type=None, parser_context=None) -> str:  # type: ignore[override]
        limit = max_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ValidationFailed(f"the CSV body is larger than {limit} bytes", fields={"csv": f"at most {limit} bytes"})
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            return raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
        except (LookupError, UnicodeDecodeError) as error:
            raise ValidationFailed(
                f"the CSV body is not {encoding} text: {error}", code="malformed_csv", fields={"csv": str(error)}
            ) from None


def _check_body_size(request) -> None:
    """Refuse an oversized JSON upload before parsing it into memory."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    limit = max_bytes() * JSON_BODY_FACTOR
    if length > limit:
        raise ValidationFailed(
            f"the request body is larger than {limit} bytes", fields={"rows": f"at most {max_bytes()} bytes of rows"}
        )


class DatasetUploadSerializer(StrictSerializer):
    name = DatasetNameField(max_length=63)
    rows = RowsField(help_text="A list of flat JSON objects (string, number, boolean or null values).")
    description = serializers.CharField(required=False, allow_blank=True)
    mode = serializers.ChoiceField(choices=["replace", "append"], required=False, default="replace")


class RowsQuerySerializer(RequestSerializer):
    limit = serializers.IntegerField(required=False, default=100, min_value=0, max_value=1000)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_OFFSET)


class UploadQuerySerializer(RequestSerializer):
    mode = serializers.ChoiceField(choices=["replace", "append"], required=False, default="replace")
    description = serializers.CharField(required=False, allow_blank=True)


_COLUMN = {"type": "string", "minLength": 1}
FiltersField = documented_json(
    "FiltersField",
    type="array",
    items={
        "type": "object",
        "properties": {"field": _COLUMN, "op": {"type": "string", "enum": list(OPS)}, "value": {}},
        "required": ["field", "op"],
        "additionalProperties": False,
    },
)
GroupByField = documented_json("GroupByField", type="array", items=_COLUMN)
AggregatesField = documented_json(
    "AggregatesField",
    type="array",
    items={
        "type": "object",
        "properties": {"fn": {"type": "string", "enum": list(FUNCTIONS)}, "field": _COLUMN, "as": _COLUMN},
        "required": ["fn"],
        "additionalProperties": False,
    },
)
OrderByField = documented_json(
    "OrderByField",
    type="array",
    items={
        "oneOf": [
            _COLUMN,
            {
                "type": "object",
                "properties": {"field": _COLUMN, "desc": {"type": "boolean"}},
                "required": ["field"],
                "additionalProperties": False,
            },
        ]
    },
)
LimitField = documented_json("LimitField", type="integer", minimum=1, maximum=MAX_QUERY_LIMIT)


class DatasetQuerySerializer(StrictSerializer):
    """Shapes are checked by the query itself, so the API and workflows report the same errors."""

    # The ignores: djangorestframework-stubs type a JSONField's default as a mapping, but a JSON field holds any JSON
    # value (a list, a number), and DRF takes any default.
    filters = FiltersField(required=False, default=list, help_text="rows kept: every filter holds")  # type: ignore[arg-type]
    group_by = GroupByField(required=False, default=list, help_text="field names")  # type: ignore[arg-type]
    aggregates = AggregatesField(required=False, default=list, help_text="computed per group")  # type: ignore[arg-type]
    order_by = OrderByField(required=False, default=list, help_text='[{"field", "desc": false}] or field names')  # type: ignore[arg-type]
    limit = LimitField(required=False, default=1000, help_text=f"1 to {MAX_QUERY_LIMIT}")  # type: ignore[arg-type]


QUERY_EXAMPLE = OpenApiExample(
    "Revenue by region",
    value={
        "filters": [{"field": "year", "op": "gte", "value": 2024}],
        "group_by": ["region"],
        "aggregates": [{"fn": "sum", "field": "revenue", "as": "revenue"}, {"fn": "count", "as": "orders"}],
        "order_by": [{"field": "revenue", "desc": True}],
        "limit": 10,
    },
)


class DatasetListView(TenantApiView):
    parser_classes = [JSONParser]

    @extend_schema(
        responses={200: DatasetListSerializer, **ERRORS}, operation_id="datasets_list", summary="List the tenant's datasets"
    )
    def get(self, request):
        datasets = dataset_list(**self.scope)
        return Response({"count": len(datasets), "results": [dataset_data(d) for d in datasets]})

    @extend_schema(
        request=DatasetUploadSerializer,
        responses={201: DatasetSerializer, **ERRORS},
        operation_id="datasets_upload",
        summary="Upload JSON rows: create a dataset, replace its rows or append to them",
    )
    def post(self, request):
        _check_body_size(request)
        data = self.validated(DatasetUploadSerializer, request.data)
        dataset = dataset_upload(**self.scope, **data)
        return Response(dataset_data(dataset), status=status.HTTP_201_CREATED)


class DatasetDetailView(TenantApiView):
    @extend_schema(
        responses={200: DatasetSerializer, **ERRORS},
        operation_id="datasets_retrieve",
        summary="Show a dataset (by name or id) with its first rows",
    )
    def get(self, request, ref: str):
        dataset, preview = dataset_rows(**self.scope, ref=ref, limit=PREVIEW_ROWS)
        return Response(dataset_data(dataset, preview=preview))

    @extend_schema(responses={204: None, **ERRORS}, operation_id="datasets_destroy", summary="Delete a dataset and its rows")
    def delete(self, request, ref: str):
        dataset_delete(**self.scope, ref=ref)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DatasetRowsView(TenantApiView):
    parser_classes = [CsvTextParser, JSONParser]

    @extend_schema(
        parameters=[RowsQuerySerializer],
        responses={200: RowsSerializer, **ERRORS},
        operation_id="datasets_rows",
        summary="A page of a dataset's rows",
    )
    def get(self, request, ref: str):
        page = self.validated(RowsQuerySerializer, request.query_params)
        dataset, rows = dataset_rows(**self.scope, ref=ref, **page)
        return Response({"count": dataset.row_count, **page, "results": rows})

    @extend_schema(
        parameters=[UploadQuerySerializer],
        request={"text/csv": OpenApiTypes.STR, "application/json": {"type": "array", "items": {"type": "object"}}},
        responses={200: DatasetSerializer, **ERRORS},
        operation_id="datasets_rows_upload",
        summary="Upload rows as a CSV body (text/csv, with a header row) or a JSON list; ?mode=append adds them",
    )
    def put(self, request, ref: str):
        options = self.validated(UploadQuerySerializer, request.query_params)
        if request.content_type.split(";")[0].strip().lower() == CsvTextParser.media_type:
            # an empty body parses as {}
            source: dict[str, Any] = {"csv_text": request.data if isinstance(request.data, str) else ""}
        else:
            _check_body_size(request)
            source = {"rows": request.data}
        dataset = dataset_upload(**self.scope, name=ref, **source, **options)
        return Response(dataset_data(dataset))


class DatasetQueryView(TenantApiView):
    @extend_schema(
        request=DatasetQuerySerializer,
        responses={200: QueryResultSerializer, **ERRORS, 503: ErrorSerializer},
        examples=[QUERY_EXAMPLE],
        operation_id="datasets_query",
        summary="Query a dataset: filter, group, aggregate, order, limit (read-only)",
    )
    def post(self, request, ref: str):
        query = self.validated(DatasetQuerySerializer, request.data)
        rows = dataset_query(**self.scope, dataset=ref, **query)
        return Response({"count": len(rows), "results": rows})
