"""The dataset query in SQL: filters, groups, aggregates, order and limit give exact rows; errors name the field."""

import threading

import pytest
from django.db import connection

from apps.core.errors import ApplicationError, PermissionDenied
from apps.datasets.models import Dataset
from apps.datasets.ports import DatasetsPort
from apps.datasets.selectors import dataset_query, dataset_query_for_run
from apps.datasets.services import dataset_upload
from apps.engine import NodeError

pytestmark = pytest.mark.django_db

SALES = [
    {"region": "north", "product": "apple", "units": 10, "price": 1.5, "paid": True},
    {"region": "south", "product": "apple", "units": 4, "price": 1.25, "paid": False},
    {"region": "north", "product": "pear", "units": 7, "price": 2.0, "paid": True},
    {"region": "east", "product": "pear", "units": 1, "price": 2.5, "paid": None},
    {"region": "south", "product": "plum", "units": 12, "price": 0.5, "paid": True},
    {"region": "west", "product": "fig", "units": 100, "price": 10},
]
WEST = {"region": "west", "product": "fig", "units": 100, "price": 10, "paid": None}


@pytest.fixture
def sales(owner, acme):
    return dataset_upload(principal=owner, tenant_id=acme.pk, name="sales", rows=SALES)


def query(**body):
    return dataset_query_for_run(dataset="sales", **body)


def test_no_clauses_returns_every_row_in_upload_order_with_every_column(sales):
    assert query() == [*SALES[:5], WEST]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"filters": [{"field": "units", "op": "gte", "value": 7}]}, [SALES[0], SALES[2], SALES[4], WEST]),
        (
            {"filters": [{"field": "units", "op": "gt", "value": 7}, {"field": "units", "op": "lt", "value": 100}]},
            [SALES[0], SALES[4]],
        ),
        ({"filters": [{"field": "units", "op": "lte", "value": 4}]}, [SALES[1], SALES[3]]),
        ({"filters": [{"field": "region", "op": "eq", "value": "south"}]}, [SALES[1], SALES[4]]),
        ({"filters": [{"field": "region", "value": "south"}]}, [SALES[1], SALES[4]]),  # op defaults to eq
        ({"filters": [{"field": "price", "op": "eq", "value": 2}]}, [SALES[2]]),  # 2 == 2.0
        ({"filters": [{"field": "price", "op": "eq", "value": 10.0}]}, [WEST]),
        ({"filters": [{"field": "paid", "op": "eq", "value": None}]}, [SALES[3], WEST]),  # null and missing alike
        ({"filters": [{"field": "paid", "op": "ne", "value": None}]}, SALES[:3] + [SALES[4]]),
        ({"filters": [{"field": "paid", "op": "ne", "value": True}]}, [SALES[1], SALES[3], WEST]),
        ({"filters": [{"field": "paid", "op": "eq", "value": False}]}, [SALES[1]]),
        ({"filters": [{"field": "product", "op": "in", "value": ["pear", "fig"]}]}, [SALES[2], SALES[3], WEST]),
        ({"filters": [{"field": "paid", "op": "in", "value": [False, None]}]}, [SALES[1], SALES[3], WEST]),
        ({"filters": [{"field": "product", "op": "contains", "value": "p"}]}, SALES[:5]),
        ({"filters": [{"field": "product", "op": "contains", "value": "ear"}]}, [SALES[2], SALES[3]]),
        ({"filters": [{"field": "region", "op": "lt", "value": "north"}]}, [SALES[3]]),
        ({"filters": [{"field": "region", "op": "eq", "value": "nowhere"}]}, []),
    ],
)
def test_filters(sales, body, expected):
    assert query(**body) == expected


def test_order_numbers_as_numbers_then_limit(sales):
    # As text, "100" would sort before "12".
    assert [r["units"] for r in query(order_by=[{"field": "units", "desc": True}], limit=3)] == [100, 12, 10]
    assert [r["units"] for r in query(order_by=["units"], limit=2)] == [1, 4]
    # Nulls last both ways; ties keep upload order.
    assert [r["paid"] for r in query(order_by=[{"field": "paid"}])] == [False, True, True, True, None, None]
    assert [r["product"] for r in query(order_by=[{"field": "paid", "desc": True}, {"field": "product"}])] == [
        "apple",
        "pear",
        "plum",
        "apple",
        "fig",
        "pear",
    ]


def test_group_by_with_aggregates_ordered_by_an_aggregate(sales):
    rows = query(
        filters=[{"field": "region", "op": "ne", "value": "west"}],
        group_by=["region"],
        aggregates=[
            {"fn": "sum", "field": "units", "as": "units"},
            {"fn": "count", "as": "orders"},
            {"fn": "avg", "field": "price"},
            {"fn": "max", "field": "product", "as": "last_product"},
        ],
        order_by=[{"field": "units", "desc": True}],
    )
    assert rows == [
        {"region": "north", "units": 17, "orders": 2, "avg_price": 1.75, "last_product": "pear"},
        {"region": "south", "units": 16, "orders": 2, "avg_price": 0.875, "last_product": "plum"},
        {"region": "east", "units": 1, "orders": 1, "avg_price": 2.5, "last_product": "pear"},
    ]


def test_group_by_two_fields_defaults_to_group_order_and_null_is_one_group(sales):
    rows = query(group_by=["paid", "product"], aggregates=[{"fn": "count"}])
    assert rows == [
        {"paid": False, "product": "apple", "count": 1},
        {"paid": True, "product": "apple", "count": 1},
        {"paid": True, "product": "pear", "count": 1},
        {"paid": True, "product": "plum", "count": 1},
        {"paid": None, "product": "fig", "count": 1},
        {"paid": None, "product": "pear", "count": 1},
    ]
    assert query(group_by=["paid"], order_by=[{"field": "paid", "desc": True}], limit=2) == [{"paid": True}, {"paid": False}]


def test_aggregates_without_groups_keep_number_types(sales):
    rows = query(
        aggregates=[
            {"fn": "count"},
            {"fn": "count", "field": "paid"},
            {"fn": "sum", "field": "units"},
            {"fn": "sum", "field": "price"},
            {"fn": "min", "field": "price"},
            {"fn": "max", "field": "price"},
            {"fn": "min", "field": "units"},
            {"fn": "min", "field": "paid"},
            {"fn": "max", "field": "paid"},
            {"fn": "avg", "field": "units"},
        ]
    )
    assert rows == [
        {
            "count": 6,
            "count_paid": 4,
            "sum_units": 134,
            "sum_price": 17.75,
            "min_price": 0.5,
            "max_price": 10,
            "min_units": 1,
            "min_paid": False,
            "max_paid": True,
            "avg_units": pytest.approx(134 / 6),
        }
    ]
    assert type(rows[0]["sum_units"]) is int and type(rows[0]["min_units"]) is int
    assert query(filters=[{"field": "units", "op": "gt", "value": 1000}], aggregates=[{"fn": "sum", "field": "units"}]) == [
        {"sum_units": None}
    ]


def test_field_names_are_data_never_sql(owner, acme):
    hostile = "x'); DROP TABLE datasets_dataset; --"
    dataset_upload(principal=owner, tenant_id=acme.pk, name="odd", rows=[{hostile: 1, "a b": "x"}, {hostile: 2, "a b": "y"}])
    rows = dataset_query_for_run(
        dataset="odd",
        filters=[{"field": hostile, "op": "gte", "value": 2}],
        aggregates=[{"fn": "sum", "field": hostile, "as": "'; DROP TABLE x; --"}],
    )
    assert rows == [{"'; DROP TABLE x; --": 2}]
    assert dataset_query_for_run(dataset="odd", order_by=[{"field": "a b", "desc": True}]) == [
        {hostile: 2, "a b": "y"},
        {hostile: 1, "a b": "x"},
    ]
    assert Dataset.objects.filter(name="odd").exists()


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        (
            {"filters": [{"field": "colour", "value": 1}]},
            "unknown_field",
            {"filters[0].field": "dataset 'sales' has no column 'colour'"},
        ),
        ({"group_by": ["units", "colour"]}, "unknown_field", {"group_by[1]": "dataset 'sales' has no column 'colour'"}),
        (
            {"aggregates": [{"fn": "sum", "field": "colour"}]},
            "unknown_field",
            {"aggregates[0].field": "dataset 'sales' has no column 'colour'"},
        ),
        ({"order_by": ["colour"]}, "unknown_field", {"order_by[0]": "dataset 'sales' has no column 'colour'"}),
        (
            {"group_by": ["region"], "order_by": [{"field": "units"}]},
            "unknown_field",
            {"order_by[0].field": "a grouped query orders by its outputs: region"},
        ),
        (
            {"filters": [{"field": "units", "op": "like", "value": 1}]},
            "invalid",
            {"filters[0].op": "one of eq, ne, lt, lte, gt, gte, in, contains"},
        ),
        ({"filters": [{"field": "units", "op": "eq"}]}, "invalid", {"filters[0].value": "required"}),
        ({"filters": [{"op": "eq", "value": 1}]}, "invalid", {"filters[0].field": "required"}),
        (
            {"filters": [{"field": "units", "value": "10"}]},
            "invalid",
            {"filters[0].value": "must be a number: column 'units' holds numbers"},
        ),
        (
            {"filters": [{"field": "units", "op": "gt", "value": None}]},
            "invalid",
            {"filters[0].value": "must be a number: column 'units' holds numbers"},
        ),
        (
            {"filters": [{"field": "region", "op": "gt", "value": 3}]},
            "invalid",
            {"filters[0].value": "must be text: column 'region' holds text"},
        ),
        (
            {"filters": [{"field": "paid", "op": "gt", "value": True}]},
            "invalid",
            {"filters[0].op": "'gt' does not apply to column 'paid' of booleans; use eq, ne or in"},
        ),
        (
            {"filters": [{"field": "units", "op": "in", "value": []}]},
            "invalid",
            {"filters[0].value": "must be a list of 1 to 1000 values"},
        ),
        (
            {"filters": [{"field": "units", "op": "in", "value": [1, "2"]}]},
            "invalid",
            {"filters[0].value[1]": "must be a number: column 'units' holds numbers"},
        ),
        (
            {"filters": [{"field": "units", "value": {"$gt": 1}}]},
            "invalid",
            {"filters[0].value": "must be a string, number, boolean or null"},
        ),
        (
            {"filters": [{"field": "units", "value": 1, "extra": 1}]},
            "invalid",
            {"filters[0].extra": "unknown key; expected field, op, value"},
        ),
        ({"filters": {"field": "units"}}, "invalid", {"filters": "must be a list"}),
        ({"filters": ["units"]}, "invalid", {"filters[0]": "must be an object with field, op, value"}),
        (
            {"aggregates": [{"fn": "median", "field": "units"}]},
            "invalid",
            {"aggregates[0].fn": "one of count, sum, avg, min, max"},
        ),
        (
            {"aggregates": [{"fn": "sum", "field": "region"}]},
            "invalid",
            {"aggregates[0].field": "sum needs a column of numbers; 'region' holds string values"},
        ),
        (
            {"group_by": ["region"], "aggregates": [{"fn": "count", "as": "region"}]},
            "invalid",
            {"aggregates[0].as": "'region' is already an output name; choose another with 'as'"},
        ),
        ({"order_by": [{"field": "units", "desc": "yes"}]}, "invalid", {"order_by[0].desc": "must be true or false"}),
        ({"limit": 0}, "invalid", {"limit": "a whole number from 1 to 10000"}),
        ({"limit": 10_001}, "invalid", {"limit": "a whole number from 1 to 10000"}),
        ({"limit": "5"}, "invalid", {"limit": "a whole number from 1 to 10000"}),
    ],
)
def test_bad_queries_name_the_field(sales, body, code, fields):
    with pytest.raises(ApplicationError) as raised:
        query(**body)
    assert raised.value.code == code and raised.value.status == 400
    assert raised.value.fields == fields


def test_unknown_dataset(acme):
    with pytest.raises(ApplicationError) as raised:
        dataset_query_for_run(dataset="nope")
    assert (raised.value.code, raised.value.status, raised.value.detail) == (
        "dataset_not_found",
        404,
        "dataset 'nope' does not exist",
    )


def test_the_query_runs_read_only_and_leaves_the_transaction_as_it_was(sales):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    assert len(query(limit=2)) == 2
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('transaction_read_only'), current_setting('statement_timeout')")
        assert cursor.fetchone() == ("off", before)
    Dataset.objects.filter(name="sales").update(description="still writable")


def test_query_over_the_api(api):
    owner = api()
    owner.post("/api/v1/datasets/", {"name": "sales", "rows": SALES})
    response = owner.post(
        "/api/v1/datasets/sales/query/",
        {
            "group_by": ["product"],
            "aggregates": [{"fn": "sum", "field": "units", "as": "units"}],
            "order_by": ["product"],
            "limit": 2,
        },
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"count": 2, "results": [{"product": "apple", "units": 14}, {"product": "fig", "units": 100}]}
    bad = owner.post("/api/v1/datasets/sales/query/", {"filters": [{"field": "nope", "value": 1}]})
    assert bad.status_code == 400
    assert bad.json() == {
        "detail": "unknown field 'nope'",
        "code": "unknown_field",
        "fields": {"filters[0].field": "dataset 'sales' has no column 'nope'"},
    }
    assert owner.post("/api/v1/datasets/sales/query/", {"select": ["units"]}).json()["fields"] == {"select": "unknown field"}
    assert owner.post("/api/v1/datasets/nope/query/", {}).json()["code"] == "dataset_not_found"


def test_the_port_answers_rows_and_maps_errors_to_node_errors(sales):
    port = DatasetsPort()
    assert port.query(dataset="sales", filters=({"field": "region", "value": "east"},)) == [SALES[3]]
    assert port.query(dataset=sales.id, aggregates=[{"fn": "count"}]) == [{"count": 6}]
    with pytest.raises(NodeError) as missing:
        port.query(dataset="nope")
    assert missing.value.code == "dataset_not_found" and missing.value.message == "dataset 'nope' does not exist"
    assert missing.value.retryable is False
    with pytest.raises(NodeError) as unknown:
        port.query(dataset="sales", group_by=["colour"])
    assert unknown.value.code == "unknown_field"
    assert unknown.value.message == "unknown field 'colour' (group_by[0]: dataset 'sales' has no column 'colour')"
    with pytest.raises(NodeError) as invalid:
        port.query(dataset="sales", limit=0)
    assert invalid.value.code == "invalid" and "limit" in invalid.value.message


def test_the_port_queries_the_run_schema_from_a_worker_thread(acme):
    port = DatasetsPort()  # made on the run's thread, in acme's schema
    outcome = {}

    def node():
        try:  # a fresh connection starts on public, where there is no datasets table
            port.query(dataset="nowhere")
        except Exception as error:  # noqa: BLE001
            outcome["error"] = error
            outcome["schema"] = connection.schema_name
        finally:
            connection.close()

    worker = threading.Thread(target=node)
    worker.start()
    worker.join()
    assert isinstance(outcome["error"], NodeError) and outcome["error"].code == "dataset_not_found"
    assert outcome["schema"] == acme.schema_name


def test_query_timeout_is_a_retryable_node_error(sales, settings, monkeypatch):
    from apps.datasets import query as query_module

    settings.NEXUS_DATASET_QUERY_TIMEOUT_MS = 20
    # A row source that sleeps, so the query outlives its budget and PostgreSQL cancels it.
    monkeypatch.setattr(query_module, "_TABLE", f"(SELECT r.*, pg_sleep(0.05) FROM {query_module._TABLE} r) AS slowed")
    with pytest.raises(NodeError) as raised:
        DatasetsPort().query(dataset="sales")
    assert raised.value.code == "query_timeout" and raised.value.retryable is True
    assert raised.value.message == "the query on dataset 'sales' took longer than 20 ms"
    assert Dataset.objects.filter(name="sales").count() == 1  # the surrounding transaction is still usable


def test_only_a_run_queries_without_a_principal(owner, acme, sales):
    with pytest.raises(PermissionDenied):
        dataset_query(principal=None, tenant_id=acme.pk, dataset="sales")
    assert dataset_query(principal=owner, tenant_id=acme.pk, dataset="sales", limit=1) == dataset_query_for_run(
        dataset="sales", limit=1
    )
