"""POST /api/v1/workflows/{id}/execute/ and the executions endpoints: results, persistence, bad input."""

import pytest

from apps.runs.models import Execution

pytestmark = pytest.mark.django_db


@pytest.fixture
def deployed(api):
    owner = api()
    created = owner.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"}).json()
    assert owner.post("/api/v1/workflows/hello-world/deploy/", {}).json()["status"] == "deployed"
    return created


def _executions(tenant) -> list[Execution]:
    from django.db import connection

    connection.set_tenant(tenant)
    rows = list(Execution.objects.all())
    connection.set_schema_to_public()
    return rows


def test_execute_returns_the_result_and_persists_the_run(api, deployed, nexus_world):
    response = api().post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "Nexus"}})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed"
    assert body["result"] == {"message": "Hello, Nexus!"}
    assert body["execution_id"].startswith("run_")
    [run] = _executions(nexus_world["tenants"]["acme"])
    assert run.id == body["execution_id"]
    assert run.channel == "api" and run.actor.startswith("apikey:key_")
    assert run.inputs == {"name": "Nexus"} and run.outputs == {"message": "Hello, Nexus!"}
    assert run.version_id == deployed["version_id"] and run.environment == "production"
    assert [step["node"] for step in run.steps] == ["greet"]
    assert run.steps[0]["status"] == "completed" and run.steps[0]["duration_ms"] >= 0
    detail = api(role="viewer").get(f"/api/v1/executions/{run.id}/").json()
    assert detail["steps"][0]["output"] == "Hello, Nexus!"


def test_execute_by_id_works_too(api, deployed):
    body = api().post(f"/api/v1/workflows/{deployed['id']}/execute/", {"inputs": {"name": "Id"}}).json()
    assert body["result"] == {"message": "Hello, Id!"}


@pytest.mark.parametrize(
    ("raw", "status", "code", "field"),
    [
        ('{"inputs": {"name": ', 400, "malformed_json", None),
        ('{"inputs": {}}', 400, "invalid_inputs", "inputs.name"),
        ('{"inputs": {"name": 42}}', 400, "invalid_inputs", "inputs.name"),
        ('{"inputs": {"name": "x", "extra": 1}}', 400, "invalid_inputs", "inputs"),
        ('{"inputs": "World"}', 400, "invalid_inputs", "inputs"),
        ('["inputs"]', 400, "invalid", "body"),
        ('{"inputs": {"name": "x"}, "wait": "yes"}', 400, "invalid", "wait"),
        ('{"inputz": {"name": "x"}}', 400, "invalid", "inputz"),
        ('{"inputs": {"name": "x"}, "session": "ses_unknown"}', 400, "session_not_found", "session"),
    ],
)
def test_bad_execute_requests_are_clear_and_store_nothing(api, deployed, nexus_world, raw, status, code, field):
    response = api().post("/api/v1/workflows/hello-world/execute/", raw=raw)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code
    if field:
        assert field in body["fields"], body
    assert _executions(nexus_world["tenants"]["acme"]) == []


def test_unknown_or_undeployed_workflow(api, deployed, nexus_world):
    owner = api()
    missing = owner.post("/api/v1/workflows/nope/execute/", {"inputs": {"name": "x"}})
    assert missing.status_code == 404 and missing.json()["code"] == "workflow_not_found"
    owner.post("/api/v1/workflows/", {"slug": "draft", "template": "basic"})
    undeployed = owner.post("/api/v1/workflows/draft/execute/", {"inputs": {"name": "x"}})
    assert undeployed.status_code == 409 and undeployed.json()["code"] == "not_deployed"
    staging = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}, "environment": "staging"})
    assert staging.status_code == 409
    assert owner.get("/api/v1/workflows/hello-world/execute/").status_code == 405
    assert _executions(nexus_world["tenants"]["acme"]) == []


def test_executions_list_filters_and_paginates(api, deployed):
    owner = api()
    ids = [
        owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": str(i)}}).json()["execution_id"]
        for i in range(3)
    ]
    listing = owner.get("/api/v1/executions/", workflow="hello-world", channel="api", status="completed", limit=2).json()
    assert listing["count"] == 3
    assert [r["id"] for r in listing["results"]] == list(reversed(ids))[:2]
    assert owner.get("/api/v1/executions/", offset=2, limit=2).json()["results"][0]["id"] == ids[0]
    assert owner.get("/api/v1/executions/", workflow=deployed["id"]).json()["count"] == 3
    assert owner.get("/api/v1/executions/", channel="cli").json()["count"] == 0
    bad = owner.get("/api/v1/executions/", channel="carrier-pigeon")
    assert bad.status_code == 400 and "channel" in bad.json()["fields"]
    assert owner.get("/api/v1/executions/", limit=0).status_code == 400
    assert api(tenant="globex").get("/api/v1/executions/").json()["count"] == 0
    assert api(tenant="globex").get(f"/api/v1/executions/{ids[0]}/").status_code == 404


def test_list_endpoints_do_not_query_per_row(api, deployed, django_assert_max_num_queries):
    owner = api()
    for i in range(5):
        owner.post("/api/v1/workflows/", {"slug": f"wf-{i}", "template": "basic"})
        owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": str(i)}})
    with django_assert_max_num_queries(6):
        assert owner.get("/api/v1/workflows/").json()["count"] == 6
    with django_assert_max_num_queries(6):
        assert owner.get("/api/v1/executions/").json()["count"] == 5


def test_cancel_a_finished_run_is_a_conflict(api, deployed):
    owner = api()
    run = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}}).json()
    response = owner.post(f"/api/v1/executions/{run['execution_id']}/cancel/", {})
    assert response.status_code == 409 and response.json()["code"] == "execution_finished"
