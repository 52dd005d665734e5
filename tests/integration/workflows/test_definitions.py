"""Definitions on every door: validation without storing, YAML on the CLI, versions, and test suites."""

import json

import pytest

from apps.core.errors import PermissionDenied
from apps.core.principal import Principal
from apps.workflows.selectors import workflow_validate

pytestmark = pytest.mark.django_db

GOOD = {
    "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    "nodes": [
        {"id": "double", "type": "template", "config": {"template": "{{ inputs.n * 2 }}", "output": "json"}},
    ],
    "edges": [],
    "outputs": {"value": "nodes.double"},
}


def test_validate_endpoint_checks_without_storing(api):
    owner = api()
    ok = owner.post(
        "/api/v1/workflows/validate/",
        {
            "definition": {
                **GOOD,
                "nodes": [{"id": "a", "type": "template", "config": {"template": "x"}}],
                "outputs": {"v": "nodes.a"},
            }
        },
    )
    assert ok.status_code == 200 and ok.json() == {"valid": True, "nodes": ["a"], "inline_eligible": True}
    cycle = {
        "nodes": [
            {"id": "a", "type": "template", "config": {"template": "a"}},
            {"id": "b", "type": "template", "config": {"template": "b"}},
        ],
        "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}],
        "outputs": {"v": "nodes.missing"},
    }
    bad = owner.post("/api/v1/workflows/validate/", {"definition": cycle})
    assert bad.status_code == 400
    fields = bad.json()["fields"]
    assert any("cycle" in message for message in fields.values()), fields
    assert "definition.outputs.v" in fields
    assert owner.get("/api/v1/workflows/").json()["count"] == 0


def test_bad_test_cases_are_named(api):
    definition = {
        "nodes": [{"id": "a", "type": "template", "config": {"template": "x"}}],
        "outputs": {"v": "nodes.a"},
        "tests": [{"name": "t", "inputs": {}}, {"name": "t", "expect_status": "great", "extra": 1}],
    }
    response = api().post("/api/v1/workflows/", {"slug": "with-tests", "definition": definition})
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert set(fields) >= {
        "definition.tests[0]",
        "definition.tests[1].name",
        "definition.tests[1].expect_status",
        "definition.tests[1].extra",
    }


def test_slug_validate_is_reserved(api):
    assert api().post("/api/v1/workflows/", {"slug": "validate", "template": "basic"}).status_code == 400


def test_test_endpoint_runs_the_latest_version_or_a_suite(api):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "hello", "template": "basic"})
    single = owner.post("/api/v1/workflows/hello/test/", {"inputs": {"name": "T"}}).json()
    assert single["outputs"] == {"message": "Hello, T!"} and single["channel"] == "api" and single["environment"] is None
    report = owner.post("/api/v1/workflows/hello/test/", {"suite": "integration"}).json()
    assert (report["passed"], report["failed"], report["total"]) == (1, 0, 1)
    assert report["cases"][0]["name"] == "greets by name" and report["cases"][0]["status"] == "passed"
    every = owner.post("/api/v1/workflows/hello/test/", {"suite": "all"}).json()
    assert every["total"] == 2 and every["passed"] == 2
    both = owner.post("/api/v1/workflows/hello/test/", {"inputs": {"name": "x"}, "suite": "all"})
    assert both.status_code == 400 and "suite" in both.json()["fields"]
    assert api(role="viewer").post("/api/v1/workflows/hello/test/", {"suite": "all"}).status_code == 403


def test_a_failing_case_is_reported_with_the_reason(nexus, nexus_world, tmp_path):
    definition = {
        **GOOD,
        "tests": [
            {"name": "doubles", "inputs": {"n": 2}, "expect": {"value": 4}},
            {"name": "wrong on purpose", "inputs": {"n": 2}, "expect": {"value": 5}},
        ],
    }
    path = tmp_path / "double.json"
    path.write_text(json.dumps(definition))
    code, _, err = nexus("--tenant=acme", "workflow", "create", "double", f"--file={path}")
    assert code == 0, err
    code, out, _ = nexus("--tenant=acme", "test", "double", "--suite", "integration", "--json")
    report = json.loads(out)
    assert code == 1 and (report["passed"], report["failed"], report["total"]) == (1, 1, 2)
    assert report["cases"][1]["failures"] == ["output 'value' is 4, expected 5"]
    code, _, err = nexus("--tenant=acme", "test", "double", "--suite", "nightly")
    assert code == 2 and "no test cases" in err


def test_yaml_definitions_on_the_cli(nexus, nexus_world, tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(
        "inputs:\n  type: object\n  properties: {name: {type: string}}\n  required: [name]\n"
        "nodes:\n  - id: greet\n    type: template\n    config: {template: 'Hi {{ inputs.name }}'}\n"
        "outputs: {message: nodes.greet}\n"
    )
    code, out, _ = nexus("--tenant=acme", "workflow", "validate", f"--file={path}", "--json")
    assert code == 0 and json.loads(out)["valid"] is True
    code, out, err = nexus("--tenant=acme", "workflow", "create", "yaml-flow", f"--file={path}", "--json")
    assert code == 0, err
    code, out, _ = nexus("--tenant=acme", "test", "yaml-flow", '--input={"name": "Y"}', "--json")
    assert json.loads(out) == {"message": "Hi Y"}
    bad = tmp_path / "bad.yaml"
    bad.write_text("nodes: [unclosed\n")
    code, out, err = nexus("--tenant=acme", "workflow", "validate", f"--file={bad}")
    assert code == 2 and "not valid YAML" in err and out == ""
    evil = tmp_path / "evil.yaml"
    evil.write_text("nodes: !!python/object/apply:os.system ['true']\n")
    code, _, err = nexus("--tenant=acme", "workflow", "validate", f"--file={evil}")
    assert code == 2


def test_update_from_a_file_adds_a_version(nexus, nexus_world, tmp_path):
    nexus("--tenant=acme", "create", "workflow", "hello")
    definition = json.loads(json.dumps(GOOD))
    path = tmp_path / "v2.json"
    path.write_text(json.dumps(definition))
    code, out, _ = nexus("--tenant=acme", "workflow", "update", "hello", f"--file={path}", "--json")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = nexus("--tenant=acme", "template", "list", "--json")
    assert "basic" in [t["name"] for t in json.loads(out)["templates"]]


def test_workflow_validate_checks_access_on_every_door(nexus_world):
    acme, globex = nexus_world["tenants"]["acme"], nexus_world["tenants"]["globex"]
    outsider = Principal(kind="api_key", actor="apikey:globex", tenant_id=globex.pk, tenant_slug="globex", role="owner")
    definition = {"nodes": [{"id": "a", "type": "template", "config": {"template": "x"}}], "outputs": {"v": "nodes.a"}}
    with pytest.raises(PermissionDenied):
        workflow_validate(principal=outsider, tenant_id=acme.pk, definition=definition)
    insider = Principal(kind="api_key", actor="apikey:acme", tenant_id=acme.pk, tenant_slug="acme", role="viewer")
    assert workflow_validate(principal=insider, tenant_id=acme.pk, definition=definition) == {
        "valid": True,
        "nodes": ["a"],
        "inline_eligible": True,
    }
