"""The `nexus` command in-process: JSON output, rich output, errors on stderr with non-zero exits."""

import json

import pytest

from apps.runs.models import Execution
from apps.workflows.models import Workflow

pytestmark = pytest.mark.django_db


def test_developer_journey_on_the_cli(nexus, nexus_world):
    code, out, err = nexus("--tenant", "acme", "create", "workflow", "hello-world", "--template=basic", "--json")
    assert code == 0, err
    created = json.loads(out)
    assert created["workflow_id"].startswith("wf_") and created["slug"] == "hello-world"

    code, out, _ = nexus("test", "hello-world", '--input={"name": "World"}', "--json", "--tenant", "acme")
    assert code == 0 and json.loads(out) == {"message": "Hello, World!"}

    code, out, _ = nexus("deploy", created["workflow_id"], "--json", "--tenant=acme")
    deployed = json.loads(out)
    assert code == 0 and deployed["status"] == "deployed" and deployed["environment"] == "production"

    code, out, _ = nexus("run", "hello-world", '--input={"name": "Run"}', "--json", "--tenant=acme")
    assert json.loads(out)["result"] == {"message": "Hello, Run!"}

    code, out, _ = nexus("history", "--limit=2", "--json", "--tenant=acme")
    history = json.loads(out)
    assert [e["channel"] for e in history["executions"]] == ["cli", "cli"]
    assert [e["environment"] for e in history["executions"]] == ["production", None]

    code, out, _ = nexus("workflow", "list", "--json", "--tenant=acme")
    assert [w["slug"] for w in json.loads(out)["workflows"]] == ["hello-world"]


def test_rich_output_for_people(nexus, nexus_world):
    nexus("--tenant=acme", "create", "workflow", "hello-world")
    code, out, _ = nexus("--tenant=acme", "workflow", "list")
    assert code == 0 and "hello-world" in out and "{" not in out
    code, out, _ = nexus("--tenant=acme", "test", "hello-world", '--input={"name": "Ada"}')
    assert code == 0 and "Hello, Ada!" in out and "completed" in out


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["test", "hello-world", "--input={not json"], 2, "--input is not valid JSON"),
        (["test", "hello-world", "--input=[1]"], 2, "must be a JSON object"),
        (["test", "hello-world", "--input={}"], 2, "inputs.name"),
        (["test", "hello-world", '--input={"name": 7}'], 2, "inputs.name"),
        (["test", "nope", '--input={"name": "x"}'], 3, "workflow 'nope' does not exist"),
        (["run", "hello-world", '--input={"name": "x"}'], 5, "not deployed"),
        (["create", "workflow", "Bad Slug"], 2, "invalid workflow slug"),
        (["create", "workflow", "x", "--template=nope"], 2, "unknown template"),
        (["create", "workflow", "x", "--file=/nonexistent.json"], 2, "cannot read"),
    ],
)
def test_bad_input_exits_non_zero_with_a_reason_and_stores_nothing(nexus, nexus_world, args, exit_code, message):
    nexus("--tenant=acme", "create", "workflow", "hello-world")
    code, out, err = nexus("--tenant=acme", *args)
    assert code == exit_code, (out, err)
    assert message in err and out == ""
    from django.db import connection

    connection.set_tenant(nexus_world["tenants"]["acme"])
    assert Execution.objects.count() == 0
    assert list(Workflow.objects.values_list("slug", flat=True)) == ["hello-world"]


def test_json_errors_are_json_on_stderr(nexus, nexus_world):
    code, out, err = nexus("--tenant=acme", "workflow", "show", "nope", "--json")
    assert code == 3 and out == ""
    assert json.loads(err)["error"]["code"] == "workflow_not_found"


def test_unknown_tenant_is_an_error(nexus, nexus_world):
    code, _, err = nexus("--tenant=nowhere", "workflow", "list")
    assert code == 3 and "tenant 'nowhere' does not exist" in err


def test_apikey_create_list_revoke(nexus, nexus_world, client):
    code, out, _ = nexus("--tenant=acme", "apikey", "create", "--role=operator", "--json")
    created = json.loads(out)
    assert created["key"].startswith("nxk_") and created["role"] == "operator" and created["tenant"] == "acme"
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {created['key']}").status_code == 200
    code, out, _ = nexus("--tenant=acme", "apikey", "list", "--json")
    listed = json.loads(out)["keys"]
    assert created["id"] in [k["id"] for k in listed] and "key" not in listed[0]
    code, out, _ = nexus("--tenant=acme", "apikey", "revoke", created["id"], "--json")
    assert json.loads(out)["revoked_at"]
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {created['key']}").status_code == 401
    code, _, err = nexus("--tenant=acme", "apikey", "create", "--role=emperor")
    assert code == 2 and "role" in err


def test_acting_as_a_user_uses_their_role(nexus, nexus_world):
    from django.db import connection

    from apps.accounts.services import membership_set, user_create

    connection.set_schema_to_public()
    viewer = user_create(username="vera", password="a-long-password-1")
    membership_set(user=viewer, tenant=nexus_world["tenants"]["acme"], role="viewer")
    code, _, err = nexus("--tenant=acme", "--as=vera", "create", "workflow", "by-vera")
    assert code == 4 and "may not" in err
    code, out, _ = nexus("--tenant=acme", "--as=vera", "workflow", "list", "--json")
    assert code == 0 and json.loads(out) == {"workflows": []}
    code, _, err = nexus("--tenant=globex", "--as=vera", "workflow", "list")
    assert code == 3 and "not a member" in err


def test_tenant_list_and_health(nexus, nexus_world):
    code, out, _ = nexus("tenant", "list", "--json")
    assert {"acme", "globex", "default"} <= {t["slug"] for t in json.loads(out)["tenants"]}
    code, out, _ = nexus("health", "--json")
    report = json.loads(out)
    assert report["checks"]["database"]["ok"] and report["checks"]["redis"]["ok"]
