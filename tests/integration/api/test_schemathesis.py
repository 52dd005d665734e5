"""The published OpenAPI schema against the running code, through the production WSGI application.

Schemathesis calls every operation as a tenant owner (an API key, not a platform admin: the tenant endpoints
answer it 403, which they document) with the schema's explicit examples, every boundary case it defines
(coverage) and a few random inputs, positive and negative, seeded so a run repeats. Every answer must be no
5xx, with a documented status code and content type, and a body and headers that match the schema. A walk
through the success answers, which random inputs seldom reach, checks those the same way. Requests run in the
test's transaction: what they create is rolled back.

The schema is generated as `GET /api/schema/` serves it, at import: schemathesis.pytest.from_fixture (a schema
from a fixture) fails under pytest 9, which no longer has the `Node._nodeid` it sets.
"""

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Explicit examples, the schema's boundary cases (every one), then random inputs (max_examples below); the
# credential is sent by the test, so no security header is generated.
CONFIG = {
    "seed": 20260,
    "generation": {"with-security-parameters": False, "allow-x00": False},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
}


@pytest.fixture
def owner_key(nexus_world):
    return nexus_world["keys"][("acme", "owner")]


@pytest.fixture
def wsgi_application(db):
    """The production WSGI entry point, minus what only the test transaction forbids: Django closes a
    connection that is not in autocommit at every request's start and end (as django.test.Client, stop it)."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from nexus_site.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield application
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _published_schema() -> dict:
    """The schema `GET /api/schema/` serves, generated the same way (drf-spectacular, public, with hooks)."""
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


schema = schemathesis.openapi.from_dict(_published_schema(), config=schemathesis.Config.from_dict(CONFIG))


@schema.parametrize()
@settings(
    max_examples=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, wsgi_application, owner_key):
    case.call_and_validate(app=wsgi_application, headers={"X-API-Key": owner_key}, checks=CHECKS)


# Fuzzed inputs seldom get past validation, so the success answers are checked here, on a walk that creates real
# things and calls every operation once the way a client would; each answer is validated as above.


@pytest.fixture
def call(wsgi_application, owner_key):
    """call(method, path, status, key=…, auth=…, **case) -> the response body, the response checked against the
    schema and `status`. The credential is the owner key, or `key`, or the headers in `auth`."""

    def send(method: str, path: str, status: int, *, key: str | None = None, auth: dict | None = None, **case):
        operation = schema[path][method]
        headers = auth if auth is not None else {"X-API-Key": key or owner_key}
        response = operation.Case(**case).call_and_validate(app=wsgi_application, headers=headers, checks=CHECKS)
        assert response.status_code == status, response.text
        content_type = next((values[0] for name, values in response.headers.items() if name.lower() == "content-type"), "")
        return response.json() if response.content and "json" in content_type else None

    return send


def test_workflow_execution_and_session_answers_match_the_schema(call):
    wf = {"ref": "greeter"}
    created = call("POST", "/api/v1/workflows/", 201, body={"slug": "greeter", "template": "basic"})
    call("GET", "/api/v1/workflows/", 200)
    call("GET", "/api/v1/workflows/{ref}/", 200, path_parameters=wf)
    call("PATCH", "/api/v1/workflows/{ref}/", 200, path_parameters=wf, body={"description": "says hello"})
    call("POST", "/api/v1/workflows/validate/", 200, body={"definition": created["definition"]})
    call("POST", "/api/v1/workflows/{ref}/test/", 200, path_parameters=wf, body={"inputs": {"name": "Test"}})
    suite = call("POST", "/api/v1/workflows/{ref}/test/", 200, path_parameters=wf, body={"suite": "all"})
    assert suite["total"] == 2
    call("POST", "/api/v1/workflows/{ref}/deploy/", 200, path_parameters=wf, body={"environment": "production"})

    session = call("POST", "/api/v1/sessions/", 201, body={"user": "ada", "metadata": {"ticket": 1}})
    ses = {"session_id": session["id"]}
    done = call(
        "POST",
        "/api/v1/workflows/{ref}/execute/",
        200,
        path_parameters=wf,
        body={"inputs": {"name": "Ada"}, "session": session["id"]},
    )
    queued = call(
        "POST", "/api/v1/workflows/{ref}/execute/", 202, path_parameters=wf, body={"inputs": {"name": "Q"}, "wait": False}
    )
    call("GET", "/api/v1/executions/", 200, query={"workflow": "greeter", "status": "completed"})
    call("GET", "/api/v1/executions/{run_id}/", 200, path_parameters={"run_id": done["execution_id"]})
    call("POST", "/api/v1/executions/{run_id}/cancel/", 200, path_parameters={"run_id": queued["execution_id"]})
    call("POST", "/api/v1/executions/{run_id}/cancel/", 409, path_parameters={"run_id": done["execution_id"]})
    call("GET", "/api/v1/sessions/{session_id}/", 200, path_parameters=ses)
    call("PATCH", "/api/v1/sessions/{session_id}/", 200, path_parameters=ses, body={"metadata": {"ticket": 2}})
    runs = call("GET", "/api/v1/sessions/{session_id}/executions/", 200, path_parameters=ses)
    assert [run["id"] for run in runs["results"]] == [done["execution_id"]]
    call("DELETE", "/api/v1/workflows/{ref}/", 204, path_parameters=wf)


def test_dataset_and_artifact_answers_match_the_schema(call, acme):
    from django.db import connection

    from apps.artifacts.services import artifact_store

    rows = [{"region": "eu", "revenue": 10.5, "year": 2025}, {"region": "us", "revenue": 7, "year": 2024}]
    ds = {"ref": "sales"}
    call("POST", "/api/v1/datasets/", 201, body={"name": "sales", "rows": rows})
    call("GET", "/api/v1/datasets/", 200)
    call("GET", "/api/v1/datasets/{ref}/", 200, path_parameters=ds)
    call("GET", "/api/v1/datasets/{ref}/rows/", 200, path_parameters=ds, query={"limit": 1})
    call(
        "PUT",
        "/api/v1/datasets/{ref}/rows/",
        200,
        path_parameters=ds,
        query={"mode": "append"},
        body=[{"region": "apac", "revenue": 3, "year": 2025}],
        media_type="application/json",
    )
    query = {"group_by": ["region"], "aggregates": [{"fn": "sum", "field": "revenue", "as": "revenue"}], "limit": 10}
    result = call("POST", "/api/v1/datasets/{ref}/query/", 200, path_parameters=ds, body=query)
    assert result["count"] == 3
    call("DELETE", "/api/v1/datasets/{ref}/", 204, path_parameters=ds)

    connection.set_tenant(acme)
    chart = artifact_store(name="chart.svg", content_type="image/svg+xml", data=b"<svg/>", execution_id="run_x", node_id="n")
    connection.set_schema_to_public()
    art = {"artifact_id": chart.id}
    call("GET", "/api/v1/artifacts/", 200, query={"execution": "run_x"})
    call("GET", "/api/v1/artifacts/{artifact_id}/", 200, path_parameters=art)
    call("GET", "/api/v1/artifacts/{artifact_id}/download/", 200, path_parameters=art)


def test_tenant_audit_and_login_answers_match_the_schema(call, make_user):
    call("GET", "/api/v1/tenants/{slug}/", 200, path_parameters={"slug": "acme"})
    call("GET", "/api/v1/tenants/", 403)  # platform admins only
    call("GET", "/api/v1/audit/", 200, query={"limit": 5})
    make_user("schema-ann", acme="developer")
    pair = call("POST", "/api/v1/auth/token/", 200, body={"username": "schema-ann", "password": "a-long-password-1"})
    call("POST", "/api/v1/auth/refresh/", 200, body={"refresh": pair["refresh"]})
    call("POST", "/api/v1/auth/token/", 401, body={"username": "schema-ann", "password": "wrong-password-123"})


def test_refused_credentials_and_rate_limits_match_the_schema(call, acme, settings):
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal

    call("GET", "/api/v1/workflows/", 401, key="nxk_deadbeef_nope")
    system = Principal(
        kind="system", actor="system:test", tenant_id=acme.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )
    _, fresh = apikey_create(principal=system, tenant=acme, role="owner", name="schema-limited")
    settings.NEXUS_RATE_LIMIT_PLANS = {
        plan: {**limits, "credential": 1} for plan, limits in settings.NEXUS_RATE_LIMIT_PLANS.items()
    }
    call("GET", "/api/v1/workflows/", 200, key=fresh)
    limited = call("GET", "/api/v1/workflows/", 429, key=fresh)
    assert limited["code"] == "rate_limited" and limited["retry_after"] >= 1


def test_application_delivery_and_oauth_answers_match_the_schema(call, settings, nexus_world):
    from apps.core.ids import new_id
    from apps.integrations.models import WebhookDelivery

    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = True
    body = {"name": "schema-app", "webhook_url": "http://127.0.0.1:9/hooks", "scopes": ["workflows:read", "executions:read"]}
    app = call("POST", "/api/v1/apps/", 201, body=body)
    ref = {"app_id": app["id"]}
    call("GET", "/api/v1/apps/", 200)
    call("GET", "/api/v1/apps/{app_id}/", 200, path_parameters=ref)
    call("PATCH", "/api/v1/apps/{app_id}/", 200, path_parameters=ref, body={"webhook_events": ["execution.*"]})
    secret = call("POST", "/api/v1/apps/{app_id}/rotate/", 200, path_parameters=ref, body={"credentials": ["client_secret"]})

    delivery = WebhookDelivery.objects.create(
        id=new_id("whd"),
        application_id=app["id"],
        tenant_id=nexus_world["tenants"]["acme"].pk,
        event_id=new_id("evt"),
        event_type="execution.completed",
        payload={"type": "execution.completed", "data": {}},
        status="failed",
        attempts=3,
        response_code=503,
        latency_ms=12.5,
        last_error="receiver answered 503",
    )
    both = {**ref, "delivery_id": delivery.id}
    call("GET", "/api/v1/apps/{app_id}/deliveries/", 200, path_parameters=ref, query={"status": "failed"})
    call("GET", "/api/v1/apps/{app_id}/deliveries/{delivery_id}/", 200, path_parameters=both)
    call("POST", "/api/v1/apps/{app_id}/deliveries/{delivery_id}/redeliver/", 202, path_parameters=both)

    basic = base64.b64encode(f"{app['client_id']}:{secret['client_secret']}".encode()).decode()
    client = {"auth": {"Authorization": f"Basic {basic}"}, "media_type": "application/x-www-form-urlencoded"}
    token = call("POST", "/oauth/token/", 200, body={"grant_type": "client_credentials"}, **client)
    call("GET", "/api/v1/workflows/", 200, auth={"Authorization": f"Bearer {token['access_token']}"})
    call("POST", "/oauth/introspect/", 200, body={"token": token["access_token"]}, **client)
    call("POST", "/oauth/revoke_token/", 200, body={"token": token["access_token"]}, **client)
    call("GET", "/api/v1/workflows/", 401, auth={"Authorization": f"Bearer {token['access_token']}"})
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{app['client_id']}:wrong".encode()).decode()}
    call("POST", "/oauth/token/", 401, body={"grant_type": "client_credentials"}, auth=wrong, media_type=client["media_type"])
    call("POST", "/api/v1/apps/{app_id}/revoke/", 200, path_parameters=ref)


def test_the_served_schema_is_the_one_tested(api):
    response = api().get("/api/schema/", format="json")
    assert response.status_code == 200
    served = response.json()
    assert served["paths"].keys() == schema.raw_schema["paths"].keys()
    assert served["components"]["securitySchemes"] == schema.raw_schema["components"]["securitySchemes"]
