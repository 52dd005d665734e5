"""REST API: authentication, tenant isolation, workflow lifecycle and clear errors, on the real database."""

import pytest

from apps.runs.models import Execution
from apps.workflows.models import Workflow

pytestmark = pytest.mark.django_db

BAD_DEFINITION = {
    "inputs": {"type": "object"},
    "nodes": [{"id": "greet", "type": "no-such-type", "config": {}}],
    "edges": [],
    "outputs": {"message": "nodes.greet"},
}


def _count(model, tenant) -> int:
    from django.db import connection

    connection.set_tenant(tenant)
    count = model.objects.count()
    connection.set_schema_to_public()
    return count


def test_health_needs_no_credential(client):
    response = client.get("/health")
    assert response.status_code in (200, 503)
    body = response.json()
    assert set(body) == {"healthy", "status", "checks"}  # the details are for platform admins (tests/integration/ops)
    assert body["checks"]["database"]["ok"] is True


def test_every_api_path_needs_a_credential(api):
    anonymous = api(key=None)
    for path in ("/api/v1/workflows/", "/api/v1/executions/"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json()["code"] == "not_authenticated"
        assert response["WWW-Authenticate"].startswith("Bearer")
    response = anonymous.post("/api/v1/workflows/hello/execute/", {"inputs": {}})
    assert response.status_code == 401


def test_a_wrong_key_is_refused(api):
    for key in ("nxk_deadbeef_nope", "not-a-key"):
        response = api(key=key).get("/api/v1/workflows/")
        assert response.status_code == 401
        assert response.json() == {"detail": "invalid API key", "code": "invalid_credentials"}


def test_x_api_key_header_works(client, nexus_world):
    response = client.get("/api/v1/workflows/", HTTP_X_API_KEY=nexus_world["keys"][("acme", "viewer")])
    assert response.status_code == 200


def test_create_from_template_then_read_by_slug_and_id(api):
    owner = api()
    response = owner.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"})
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["id"].startswith("wf_") and created["slug"] == "hello-world"
    assert created["version"] == 1 and created["version_id"].startswith("wfv_")
    assert created["input_schema"]["required"] == ["name"]
    by_slug = owner.get("/api/v1/workflows/hello-world/").json()
    by_id = owner.get(f"/api/v1/workflows/{created['id']}/").json()
    assert by_slug["id"] == by_id["id"] == created["id"]
    listing = owner.get("/api/v1/workflows/").json()
    assert [w["slug"] for w in listing["results"]] == ["hello-world"]


def test_another_tenant_sees_nothing(api, nexus_world):
    created = api().post("/api/v1/workflows/", {"slug": "secret", "template": "basic"}).json()
    globex = api(tenant="globex")
    assert globex.get("/api/v1/workflows/").json()["results"] == []
    for path in (f"/api/v1/workflows/{created['id']}/", "/api/v1/workflows/secret/"):
        response = globex.get(path)
        assert response.status_code == 404
        assert response.json()["code"] == "workflow_not_found"
    assert globex.post(f"/api/v1/workflows/{created['id']}/deploy/", {}).status_code == 404
    assert globex.post(f"/api/v1/workflows/{created['id']}/execute/", {"inputs": {"name": "x"}}).status_code == 404
    assert globex.delete(f"/api/v1/workflows/{created['id']}/").status_code == 404
    assert _count(Workflow, nexus_world["tenants"]["acme"]) == 1


def test_bad_create_requests_name_the_field_and_store_nothing(api, nexus_world):
    owner = api()
    cases = [
        ({"slug": "Bad Slug", "template": "basic"}, "slug"),
        ({"slug": "x1", "template": "nope"}, "template"),
        ({"slug": "x2", "definition": BAD_DEFINITION}, "definition.nodes[0].type"),
        ({"slug": "x3", "definition": "not an object"}, "definition"),
        ({"slug": "x4", "template": "basic", "colour": "red"}, "colour"),
        ({"template": "basic"}, "slug"),
    ]
    for body, field in cases:
        response = owner.post("/api/v1/workflows/", body)
        assert response.status_code == 400, (body, response.content)
        payload = response.json()
        assert field in payload["fields"], (field, payload)
        assert payload["detail"] and payload["code"]
    response = owner.post("/api/v1/workflows/", raw="{not json")
    assert response.status_code == 400 and response.json()["code"] == "malformed_json"
    assert _count(Workflow, nexus_world["tenants"]["acme"]) == 0


def test_duplicate_slug_is_a_conflict(api):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "dup", "template": "basic"}).status_code == 201
    response = owner.post("/api/v1/workflows/", {"slug": "dup", "template": "basic"})
    assert response.status_code == 409
    assert response.json()["fields"] == {"slug": "already exists"}


def test_roles_viewer_reads_operator_runs_developer_builds(api, nexus_world):
    viewer, operator, developer = api(role="viewer"), api(role="operator"), api(role="developer")
    denied = viewer.post("/api/v1/workflows/", {"slug": "by-viewer", "template": "basic"})
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert operator.post("/api/v1/workflows/", {"slug": "by-operator", "template": "basic"}).status_code == 403
    assert _count(Workflow, nexus_world["tenants"]["acme"]) == 0
    assert developer.post("/api/v1/workflows/", {"slug": "hello", "template": "basic"}).status_code == 201
    assert operator.post("/api/v1/workflows/hello/deploy/", {}).status_code == 403
    assert developer.post("/api/v1/workflows/hello/deploy/", {}).status_code == 200
    assert viewer.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "v"}}).status_code == 403
    assert _count(Execution, nexus_world["tenants"]["acme"]) == 0
    ran = operator.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "Op"}})
    assert ran.status_code == 200 and ran.json()["result"] == {"message": "Hello, Op!"}
    assert viewer.get("/api/v1/executions/").json()["count"] == 1


def test_update_adds_a_version_and_runs_pin_the_deployed_one(api):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "greeter", "template": "basic"})
    owner.post("/api/v1/workflows/greeter/deploy/", {"environment": "production"})
    definition = owner.get("/api/v1/workflows/greeter/").json()["definition"]
    definition["nodes"][0]["config"]["template"] = "Hi, {{ inputs.name }}."
    updated = owner.patch("/api/v1/workflows/greeter/", {"definition": definition}).json()
    assert updated["version"] == 2
    first = owner.post("/api/v1/workflows/greeter/execute/", {"inputs": {"name": "A"}}).json()
    assert first["result"] == {"message": "Hello, A!"} and first["version"] == 1
    owner.post("/api/v1/workflows/greeter/deploy/", {})
    second = owner.post("/api/v1/workflows/greeter/execute/", {"inputs": {"name": "A"}}).json()
    assert second["result"] == {"message": "Hi, A."} and second["version"] == 2
    same = owner.patch("/api/v1/workflows/greeter/", {"definition": definition}).json()
    assert same["version"] == 2  # an identical definition adds no version


def test_delete_hides_the_workflow_but_keeps_its_runs(api):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "temp", "template": "basic"})
    owner.post("/api/v1/workflows/temp/deploy/", {})
    run = owner.post("/api/v1/workflows/temp/execute/", {"inputs": {"name": "x"}}).json()
    assert owner.delete("/api/v1/workflows/temp/").status_code == 204
    assert owner.get("/api/v1/workflows/temp/").status_code == 404
    assert owner.get(f"/api/v1/executions/{run['execution_id']}/").json()["workflow"] == "temp"
    assert owner.post("/api/v1/workflows/", {"slug": "temp", "template": "basic"}).status_code == 201


def test_openapi_schema_documents_every_endpoint(api):
    schema = api().get("/api/schema/", format="json")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/workflows/", "/api/v1/workflows/{ref}/execute/", "/api/v1/executions/{run_id}/cancel/"):
        assert path in text


def test_openapi_schema_validates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi:")
