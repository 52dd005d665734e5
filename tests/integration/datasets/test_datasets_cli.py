"""`nexus dataset …` in-process: uploads from files, JSON and rich output, errors on stderr with exit codes."""

import json

import pytest
from django.db import connection

from apps.datasets.models import Dataset, DatasetRow

pytestmark = pytest.mark.django_db


def _rows(tenant, name: str) -> list[dict]:
    connection.set_tenant(tenant)
    rows = list(DatasetRow.objects.filter(dataset__name=name).order_by("position").values_list("data", flat=True))
    connection.set_schema_to_public()
    return rows


def test_upload_csv_then_json_append_list_show_query_delete(nexus, nexus_world, tmp_path):
    csv_file = tmp_path / "sales.csv"
    csv_file.write_text("region,units,price\nnorth,10,1.5\nsouth,4,2\n")
    code, out, err = nexus("--tenant=acme", "dataset", "upload", "sales", f"--file={csv_file}", "--description=Q1", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["id"].startswith("ds_") and created["row_count"] == 2 and created["description"] == "Q1"
    assert created["columns"] == [
        {"name": "region", "type": "string", "nullable": False},
        {"name": "units", "type": "integer", "nullable": False},
        {"name": "price", "type": "number", "nullable": False},
    ]

    more = tmp_path / "more.data"
    more.write_text(json.dumps([{"region": "north", "units": 5, "price": 3}]))
    code, out, err = nexus("--tenant=acme", "dataset", "upload", "sales", f"--file={more}", "--format=json", "--append", "--json")
    assert code == 0, err
    assert json.loads(out)["row_count"] == 3
    assert _rows(nexus_world["tenants"]["acme"], "sales") == [
        {"region": "north", "units": 10, "price": 1.5},
        {"region": "south", "units": 4, "price": 2},
        {"region": "north", "units": 5, "price": 3},
    ]

    code, out, _ = nexus("--tenant=acme", "dataset", "list", "--json")
    assert [d["name"] for d in json.loads(out)["datasets"]] == ["sales"]
    code, out, _ = nexus("--tenant=acme", "dataset", "show", "sales", "--limit=1", "--json")
    assert json.loads(out)["preview"] == [{"region": "north", "units": 10, "price": 1.5}]

    body = {"group_by": ["region"], "aggregates": [{"fn": "sum", "field": "units", "as": "units"}], "order_by": ["region"]}
    code, out, _ = nexus("--tenant=acme", "dataset", "query", "sales", f"--query={json.dumps(body)}", "--json")
    assert code == 0 and json.loads(out) == {
        "count": 2,
        "results": [{"region": "north", "units": 15}, {"region": "south", "units": 4}],
    }

    code, out, _ = nexus("--tenant=acme", "dataset", "delete", "sales", "--json")
    assert code == 0 and json.loads(out) == {"status": "deleted", "id": created["id"], "name": "sales"}
    connection.set_tenant(nexus_world["tenants"]["acme"])
    assert Dataset.objects.count() == 0 and DatasetRow.objects.count() == 0


def test_rich_output_for_people(nexus, nexus_world, tmp_path):
    data = tmp_path / "people.json"
    data.write_text(json.dumps([{"name": "Ada", "active": True}, {"name": "Bob", "active": None}]))
    code, out, _ = nexus("--tenant=acme", "dataset", "upload", "people", f"--file={data}")
    assert code == 0 and "people" in out and "2 rows" in out and "{" not in out
    code, out, _ = nexus("--tenant=acme", "dataset", "list")
    assert code == 0 and "people" in out
    code, out, _ = nexus("--tenant=acme", "dataset", "show", "people")
    assert code == 0 and "Ada" in out and "boolean?" in out and "null" in out
    code, out, _ = nexus(
        "--tenant=acme", "dataset", "query", "people", '--query={"filters": [{"field": "active", "value": true}]}'
    )
    assert code == 0 and "Ada" in out and "Bob" not in out


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["dataset", "upload", "people", "--file=/nonexistent.csv"], 2, "cannot read /nonexistent.csv"),
        (["dataset", "upload", "people", "--file={tmp}/rows.txt"], 2, "cannot tell the format"),
        (["dataset", "upload", "people", "--file={tmp}/bad.json"], 2, "is not valid JSON"),
        (
            ["dataset", "upload", "people", "--file={tmp}/nested.json"],
            2,
            "rows[0].tags: must be a string, number, boolean or null",
        ),
        (["dataset", "upload", "people", "--file={tmp}/short.csv"], 2, "rows[0]: line 2: 1 values, the header has 2"),
        (["dataset", "upload", "Bad Name", "--file={tmp}/good.csv"], 2, "invalid dataset name"),
        (["dataset", "show", "nope"], 3, "dataset 'nope' does not exist"),
        (["dataset", "query", "people", "--query={not json"], 2, "--query is not valid JSON"),
        (["dataset", "query", "people", '--query={"select": 1}'], 2, "query.select: unknown key"),
        (["dataset", "query", "people", '--query={"order_by": ["height"]}'], 2, "unknown field 'height'"),
        (["dataset", "delete", "nope"], 3, "dataset 'nope' does not exist"),
    ],
)
def test_bad_input_exits_non_zero_with_a_reason_and_changes_nothing(nexus, nexus_world, tmp_path, args, exit_code, message):
    (tmp_path / "good.csv").write_text("name,age\nAda,36\n")
    (tmp_path / "rows.txt").write_text("name\nx\n")
    (tmp_path / "bad.json").write_text("[{")
    (tmp_path / "nested.json").write_text('[{"tags": ["a"]}]')
    (tmp_path / "short.csv").write_text("name,age\nAda\n")
    nexus("--tenant=acme", "dataset", "upload", "people", f"--file={tmp_path / 'good.csv'}")
    code, out, err = nexus("--tenant=acme", *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code == exit_code, (out, err)
    assert message in err and out == ""
    assert _rows(nexus_world["tenants"]["acme"], "people") == [{"name": "Ada", "age": 36}]


def test_json_errors_are_json_on_stderr(nexus, nexus_world):
    code, out, err = nexus("--tenant=acme", "dataset", "query", "nope", "--json")
    assert code == 3 and out == ""
    assert json.loads(err) == {"error": {"detail": "dataset 'nope' does not exist", "code": "dataset_not_found"}}


def test_a_viewer_may_read_but_not_upload(nexus, nexus_world, tmp_path):
    from apps.accounts.services import membership_set, user_create

    connection.set_schema_to_public()
    viewer = user_create(username="vic", password="a-long-password-1")
    membership_set(user=viewer, tenant=nexus_world["tenants"]["acme"], role="viewer")
    data = tmp_path / "d.csv"
    data.write_text("a\n1\n")
    code, _, err = nexus("--tenant=acme", "--as=vic", "dataset", "upload", "d", f"--file={data}")
    assert code == 4 and "may not dataset write" in err
    code, out, _ = nexus("--tenant=acme", "--as=vic", "dataset", "list", "--json")
    assert code == 0 and json.loads(out) == {"datasets": []}
