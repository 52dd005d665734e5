"""Datasets over the REST API: uploads (JSON and CSV), type inference, limits, roles and tenant isolation."""

import json

import pytest
from django.db import connection

from apps.datasets.models import Dataset, DatasetRow

pytestmark = pytest.mark.django_db

SALES = [
    {"region": "north", "product": "apple", "units": 10, "price": 1.5, "paid": True},
    {"region": "south", "product": "apple", "units": 4, "price": 1.25, "paid": False},
    {"region": "north", "product": "pear", "units": 7, "price": 2.0, "paid": True},
    {"region": "east", "product": "pear", "units": 1, "price": 2.5, "paid": None},
    {"region": "south", "product": "plum", "units": 12, "price": 0.5, "paid": True},
]
SALES_COLUMNS = [
    {"name": "region", "type": "string", "nullable": False},
    {"name": "product", "type": "string", "nullable": False},
    {"name": "units", "type": "integer", "nullable": False},
    {"name": "price", "type": "number", "nullable": False},
    {"name": "paid", "type": "boolean", "nullable": True},
]


def _stored(tenant) -> dict:
    """{name: [rows in position order]} of the tenant's datasets, read straight from the database."""
    connection.set_tenant(tenant)
    result = {d.name: [] for d in Dataset.objects.all()}
    for row in DatasetRow.objects.select_related("dataset").order_by("dataset__name", "position"):
        result[row.dataset.name].append(row.data)
    connection.set_schema_to_public()
    return result


def put_csv(client, key: str, name: str, text: str, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return client.put(
        f"/api/v1/datasets/{name}/rows/" + (f"?{query}" if query else ""),
        text.encode(),
        content_type="text/csv",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def test_upload_json_rows_then_read_them_back(api, nexus_world):
    owner = api()
    response = owner.post("/api/v1/datasets/", {"name": "sales", "rows": SALES, "description": "Q1 sales"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"].startswith("ds_") and len(created["id"]) == 29
    assert created["name"] == "sales" and created["description"] == "Q1 sales"
    assert created["columns"] == SALES_COLUMNS
    assert created["row_count"] == 5 and created["created_by"].startswith("apikey:")

    detail = owner.get("/api/v1/datasets/sales/").json()
    assert detail["id"] == created["id"] and detail["preview"] == SALES
    assert owner.get(f"/api/v1/datasets/{created['id']}/").json()["name"] == "sales"
    page = owner.get("/api/v1/datasets/sales/rows/", limit=2, offset=1).json()
    assert page == {"count": 5, "limit": 2, "offset": 1, "results": SALES[1:3]}
    listing = owner.get("/api/v1/datasets/").json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "sales" and "preview" not in listing["results"][0]
    assert _stored(nexus_world["tenants"]["acme"]) == {"sales": SALES}


def test_csv_upload_infers_types(api, client, nexus_world):
    text = (
        'id,name,score,active,note,zip\r\n1,Ada,9.5,true,,02134\r\n2,Bob,7,FALSE,"likes, commas",10001\r\n3,Cy,-0.25,false,x,\n'
    )
    response = put_csv(client, nexus_world["keys"][("acme", "owner")], "people", text, description="team")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["columns"] == [
        {"name": "id", "type": "integer", "nullable": False},
        {"name": "name", "type": "string", "nullable": False},
        {"name": "score", "type": "number", "nullable": False},
        {"name": "active", "type": "boolean", "nullable": False},
        {"name": "note", "type": "string", "nullable": True},
        {"name": "zip", "type": "string", "nullable": True},  # "02134" keeps its zero; 10001 alone would be a number
    ]
    assert body["description"] == "team"
    assert _stored(nexus_world["tenants"]["acme"])["people"] == [
        {"id": 1, "name": "Ada", "score": 9.5, "active": True, "note": None, "zip": "02134"},
        {"id": 2, "name": "Bob", "score": 7, "active": False, "note": "likes, commas", "zip": 10001},
        {"id": 3, "name": "Cy", "score": -0.25, "active": False, "note": "x", "zip": None},
    ]


def test_csv_body_may_start_with_a_byte_order_mark(api, client, nexus_world):
    response = put_csv(client, nexus_world["keys"][("acme", "owner")], "bom", "\ufeffa,b\n1,2\n")
    assert response.status_code == 200
    assert [c["name"] for c in response.json()["columns"]] == ["a", "b"]


def test_json_list_body_on_put_rows(api, client, nexus_world):
    response = client.put(
        "/api/v1/datasets/tiny/rows/",
        json.dumps([{"a": 1}]),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {nexus_world['keys'][('acme', 'owner')]}",
    )
    assert response.status_code == 200 and response.json()["row_count"] == 1


def test_put_rows_needs_csv_or_json(client, nexus_world):
    response = client.put(
        "/api/v1/datasets/plain/rows/",
        b"a\n1\n",
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {nexus_world['keys'][('acme', 'owner')]}",
    )
    assert response.status_code == 415 and response.json()["code"] == "unsupported_media_type"
    assert _stored(nexus_world["tenants"]["acme"]) == {}


def test_append_adds_rows_and_merges_columns_replace_starts_over(api, client, nexus_world):
    owner = api()
    key = nexus_world["keys"][("acme", "owner")]
    owner.post("/api/v1/datasets/", {"name": "log", "rows": [{"n": 1, "tag": "a"}, {"n": 2, "tag": "b"}]})
    appended = owner.post("/api/v1/datasets/", {"name": "log", "rows": [{"n": 2.5, "extra": True}], "mode": "append"}).json()
    assert appended["row_count"] == 3
    assert appended["columns"] == [
        {"name": "n", "type": "number", "nullable": False},
        {"name": "tag", "type": "string", "nullable": True},
        {"name": "extra", "type": "boolean", "nullable": True},
    ]
    appended = put_csv(client, key, "log", "n,tag\n3,c\n", mode="append").json()
    assert appended["row_count"] == 4
    assert _stored(nexus_world["tenants"]["acme"])["log"] == [
        {"n": 1, "tag": "a"},
        {"n": 2, "tag": "b"},
        {"n": 2.5, "extra": True},
        {"n": 3, "tag": "c"},
    ]
    rows = owner.get("/api/v1/datasets/log/rows/").json()["results"]
    assert rows[2] == {"n": 2.5, "tag": None, "extra": True}  # every column, missing ones as null

    replaced = owner.post("/api/v1/datasets/", {"name": "log", "rows": [{"word": "only"}]}).json()
    assert replaced["id"] == appended["id"] and replaced["row_count"] == 1
    assert replaced["columns"] == [{"name": "word", "type": "string", "nullable": False}]
    assert _stored(nexus_world["tenants"]["acme"])["log"] == [{"word": "only"}]


def test_append_to_a_new_name_creates_the_dataset(api):
    created = api().post("/api/v1/datasets/", {"name": "fresh", "rows": [{"a": 1}], "mode": "append"})
    assert created.status_code == 201 and created.json()["row_count"] == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"name": "bad", "rows": {"a": 1}}, {"rows": "must be a list of objects"}),
        ({"name": "bad", "rows": []}, {"rows": "must contain at least one row"}),
        ({"name": "bad", "rows": [{"a": 1}, {"a": 2}, {"a": 3}, 7]}, {"rows[3]": "must be an object"}),
        (
            {"name": "bad", "rows": [{"a": 1, "address": {"city": "x"}}, {"a": 2, "tags": [1]}]},
            {
                "rows[0].address": "must be a string, number, boolean or null (no nested objects or lists)",
                "rows[1].tags": "must be a string, number, boolean or null (no nested objects or lists)",
            },
        ),
        ({"name": "bad", "rows": [{"a": "nul\u0000"}]}, {"rows[0].a": "must not contain NUL characters"}),
        ({"name": "bad", "rows": [{}]}, {"rows[0]": "must have at least one field"}),
        (
            {"name": "bad", "rows": [{"a b": [1]}]},
            {'rows[0]["a b"]': "must be a string, number, boolean or null (no nested objects or lists)"},
        ),
        (
            {"name": "Bad Name", "rows": [{"a": 1}]},
            {"name": "1-63 characters: lower-case letters, digits, '_' and '-', starting with a letter or digit, not 'ds_'"},
        ),
        (
            {"name": "ds_lookalike", "rows": [{"a": 1}]},
            {"name": "1-63 characters: lower-case letters, digits, '_' and '-', starting with a letter or digit, not 'ds_'"},
        ),
        ({"name": "bad", "rows": [{"a": 1}], "mode": "merge"}, {"mode": '"merge" is not a valid choice.'}),
        ({"name": "bad", "rows": [{"a": 1}], "colour": "red"}, {"colour": "unknown field"}),
        ({"rows": [{"a": 1}]}, {"name": "This field is required."}),
    ],
)
def test_bad_json_uploads_name_the_field_and_change_nothing(api, nexus_world, body, fields):
    owner = api()
    owner.post("/api/v1/datasets/", {"name": "bad", "rows": [{"keep": "me"}]})
    response = owner.post("/api/v1/datasets/", body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert payload["fields"] == fields and payload["detail"] and payload["code"] == "invalid"
    assert _stored(nexus_world["tenants"]["acme"]) == {"bad": [{"keep": "me"}]}


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("\r\n", {"csv": "expected a header row naming the columns"}),
        ("a,b\n", {"rows": "must contain at least one row"}),
        ('a,b\n1,"unterminated\n', {"csv": "line 2: unexpected end of data"}),
        ('a,b\n1,"x"y\n', {"csv": "line 2: ',' expected after '\"'"}),
        (
            "a,b\n1,2\n3,4,5\n6\n",
            {"rows[1]": "line 3: 3 values, the header has 2", "rows[2]": "line 4: 1 values, the header has 2"},
        ),
        ("a,a\n1,2\n", {"csv": "column 'a' appears twice"}),
        ("a,,c\n1,2,3\n", {"csv": "column 2 has no name"}),
    ],
)
def test_malformed_csv_is_refused_and_changes_nothing(client, nexus_world, text, fields):
    key = nexus_world["keys"][("acme", "owner")]
    put_csv(client, key, "bad", "keep\nme\n")
    response = put_csv(client, key, "bad", text)
    assert response.status_code == 400, response.content
    assert response.json()["fields"] == fields
    assert _stored(nexus_world["tenants"]["acme"]) == {"bad": [{"keep": "me"}]}


def test_csv_body_that_is_not_utf8_is_refused(client, nexus_world):
    response = client.put(
        "/api/v1/datasets/latin/rows/",
        "a\n\xe9\n".encode("latin-1"),
        content_type="text/csv",
        HTTP_AUTHORIZATION=f"Bearer {nexus_world['keys'][('acme', 'owner')]}",
    )
    assert response.status_code == 400 and response.json()["code"] == "malformed_csv"
    assert _stored(nexus_world["tenants"]["acme"]) == {}


def test_row_and_byte_limits_come_from_settings(api, client, nexus_world, settings):
    owner = api()
    key = nexus_world["keys"][("acme", "owner")]
    settings.NEXUS_DATASET_MAX_ROWS = 3
    assert owner.post("/api/v1/datasets/", {"name": "capped", "rows": [{"a": 1}, {"a": 2}]}).status_code == 201
    response = owner.post("/api/v1/datasets/", {"name": "capped", "rows": [{"a": i} for i in range(4)]})
    assert response.status_code == 400 and response.json()["fields"] == {"rows": "at most 3 rows"}
    response = put_csv(client, key, "capped", "a\n1\n2\n3\n4\n")
    assert response.status_code == 400 and response.json()["fields"] == {"rows": "at most 3 rows"}
    response = owner.post("/api/v1/datasets/", {"name": "capped", "rows": [{"a": 3}, {"a": 4}], "mode": "append"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"rows": "at most 3 rows in a dataset (2 stored)"}
    assert _stored(nexus_world["tenants"]["acme"]) == {"capped": [{"a": 1}, {"a": 2}]}

    settings.NEXUS_DATASET_MAX_ROWS = 100
    settings.NEXUS_DATASET_MAX_BYTES = 64
    response = owner.post("/api/v1/datasets/", {"name": "capped", "rows": [{"text": "x" * 80}]})
    assert response.status_code == 400 and response.json()["fields"] == {"rows": "at most 64 bytes"}
    response = put_csv(client, key, "capped", "text\n" + "y" * 80 + "\n")
    assert response.status_code == 400 and response.json()["fields"] == {"csv": "at most 64 bytes"}
    # A JSON body far over the cap is refused before it is parsed.
    response = owner.post("/api/v1/datasets/", {"name": "capped", "rows": [{"text": "z" * 200}]})
    assert response.status_code == 400
    assert response.json() == {
        "detail": "the request body is larger than 128 bytes",
        "code": "invalid",
        "fields": {"rows": "at most 64 bytes of rows"},
    }
    assert _stored(nexus_world["tenants"]["acme"]) == {"capped": [{"a": 1}, {"a": 2}]}


def test_viewer_reads_and_queries_but_cannot_write(api, client, nexus_world):
    api().post("/api/v1/datasets/", {"name": "sales", "rows": SALES})
    viewer, operator = api(role="viewer"), api(role="operator")
    assert viewer.get("/api/v1/datasets/").json()["count"] == 1
    assert viewer.get("/api/v1/datasets/sales/").status_code == 200
    assert viewer.get("/api/v1/datasets/sales/rows/").json()["count"] == 5
    assert viewer.post("/api/v1/datasets/sales/query/", {"aggregates": [{"fn": "count"}]}).json()["results"] == [{"count": 5}]

    for who in (viewer, operator):
        denied = who.post("/api/v1/datasets/", {"name": "mine", "rows": [{"a": 1}]})
        assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
        assert who.post("/api/v1/datasets/", {"name": "sales", "rows": [{"a": 1}]}).status_code == 403
        assert who.delete("/api/v1/datasets/sales/").status_code == 403
    response = put_csv(client, nexus_world["keys"][("acme", "viewer")], "sales", "a\n1\n", mode="append")
    assert response.status_code == 403
    assert _stored(nexus_world["tenants"]["acme"]) == {"sales": SALES}
    assert api(role="developer").post("/api/v1/datasets/", {"name": "dev", "rows": [{"a": 1}]}).status_code == 201


def test_another_tenant_sees_nothing(api, client, nexus_world):
    created = api().post("/api/v1/datasets/", {"name": "secret", "rows": [{"a": 1}]}).json()
    globex = api(tenant="globex")
    assert globex.get("/api/v1/datasets/").json() == {"count": 0, "results": []}
    for ref in ("secret", created["id"]):
        for response in (
            globex.get(f"/api/v1/datasets/{ref}/"),
            globex.get(f"/api/v1/datasets/{ref}/rows/"),
            globex.post(f"/api/v1/datasets/{ref}/query/", {}),
            globex.delete(f"/api/v1/datasets/{ref}/"),
        ):
            assert response.status_code == 404
            assert response.json() == {"detail": f"dataset '{ref}' does not exist", "code": "dataset_not_found"}
    # The same name in globex is globex's own dataset.
    put_csv(client, nexus_world["keys"][("globex", "owner")], "secret", "b\n2\n")
    assert _stored(nexus_world["tenants"]["acme"]) == {"secret": [{"a": 1}]}
    assert _stored(nexus_world["tenants"]["globex"]) == {"secret": [{"b": 2}]}


def test_delete_removes_the_dataset_and_its_rows(api, nexus_world):
    owner = api()
    owner.post("/api/v1/datasets/", {"name": "gone", "rows": [{"a": 1}]})
    owner.post("/api/v1/datasets/", {"name": "kept", "rows": [{"a": 2}]})
    assert owner.delete("/api/v1/datasets/gone/").status_code == 204
    assert owner.get("/api/v1/datasets/gone/").status_code == 404
    assert owner.delete("/api/v1/datasets/gone/").status_code == 404
    assert _stored(nexus_world["tenants"]["acme"]) == {"kept": [{"a": 2}]}


def test_list_does_not_query_per_dataset(api, django_assert_num_queries):
    owner = api()
    for name in ("one", "two", "three", "four"):
        owner.post("/api/v1/datasets/", {"name": name, "rows": [{"a": 1}, {"a": 2}]})
    owner.get("/api/v1/datasets/")  # the key is looked up once, then cached
    # Each request empties the connection's query log as it starts: start each count from an empty log.
    connection.queries_log.clear()
    with django_assert_num_queries(1):
        assert owner.get("/api/v1/datasets/").json()["count"] == 4
    connection.queries_log.clear()
    with django_assert_num_queries(2):  # the dataset, then its page of rows
        assert len(owner.get("/api/v1/datasets/one/rows/").json()["results"]) == 2
    connection.queries_log.clear()
    with django_assert_num_queries(2):
        assert len(owner.get("/api/v1/datasets/one/").json()["preview"]) == 2


def test_rows_page_limits_are_checked(api):
    owner = api()
    owner.post("/api/v1/datasets/", {"name": "paged", "rows": [{"a": 1}]})
    response = owner.get("/api/v1/datasets/paged/rows/", limit=5000)
    assert response.status_code == 400 and "limit" in response.json()["fields"]
    response = owner.get("/api/v1/datasets/paged/rows/", offset=-1)
    assert response.status_code == 400 and "offset" in response.json()["fields"]


def test_openapi_schema_documents_the_dataset_and_artifact_endpoints(api):
    text = api().get("/api/schema/", format="json").content.decode()
    for path in (
        "/api/v1/datasets/",
        "/api/v1/datasets/{ref}/",
        "/api/v1/datasets/{ref}/rows/",
        "/api/v1/datasets/{ref}/query/",
        "/api/v1/artifacts/",
        "/api/v1/artifacts/{artifact_id}/",
        "/api/v1/artifacts/{artifact_id}/download/",
    ):
        assert path in text
    assert "text/csv" in text
