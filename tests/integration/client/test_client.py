"""The Python client (clients/python) against a live server: health, workflows, executions, sessions, errors."""

import time

import pytest
from nexus_client import (
    AuthenticationError,
    ConflictError,
    DeployResult,
    Execution,
    ExecutionResult,
    NexusClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ValidationError,
    Workflow,
)


def test_health_needs_no_credential(live_server):
    with NexusClient(live_server.url) as anonymous:
        health = anonymous.health()
    assert health.status in ("healthy", "degraded", "down")
    assert health.healthy is (health.status == "healthy")
    assert health.checks["database"]["ok"] is True


def test_workflow_lifecycle_create_read_update_deploy_execute_delete(nexus, unique):
    client = nexus()
    slug = unique("hello")

    created = client.workflows.create(slug, template="basic", description="greets")
    assert isinstance(created, Workflow)
    assert created.id.startswith("wf_") and created.slug == slug
    assert created.version == 1 and created.deployments == []
    assert created.definition["outputs"] == {"message": "nodes.greet"}
    assert created.input_schema["required"] == ["name"]

    assert client.workflows.get(slug).id == created.id
    assert client.workflows.get(created.id).slug == slug
    listed = client.workflows.list()
    assert created.id in [w.id for w in listed] and listed.count == len(listed)

    renamed = client.workflows.update(slug, name="Greeter")
    assert (renamed.name, renamed.version) == ("Greeter", 1)

    deployed = client.workflows.deploy(slug)
    assert isinstance(deployed, DeployResult)
    assert (deployed.status, deployed.workflow_id, deployed.environment, deployed.version) == (
        "deployed",
        created.id,
        "production",
        1,
    )
    assert [d.environment for d in client.workflows.get(slug).deployments] == ["production"]

    run = client.workflows.execute(slug, {"name": "Client"})
    assert isinstance(run, ExecutionResult)
    assert run.execution_id.startswith("run_")
    assert (run.status, run.result, run.finished, run.succeeded) == ("completed", {"message": "Hello, Client!"}, True, True)

    client.workflows.delete(slug)
    with pytest.raises(NotFoundError) as missing:
        client.workflows.get(slug)
    assert missing.value.code == "workflow_not_found"


def test_executions_list_get_and_cancel_a_finished_run(nexus, unique):
    client = nexus()
    slug = unique("runs")
    client.workflows.create(slug, template="basic")
    client.workflows.deploy(slug)
    first = client.workflows.execute(slug, {"name": "one"})
    second = client.workflows.execute(slug, {"name": "two"})

    page = client.executions.list(workflow=slug)
    assert page.count == 2
    assert [e.id for e in page] == [second.execution_id, first.execution_id]  # newest first
    assert all(isinstance(e, Execution) and e.steps is None for e in page)
    assert client.executions.list(workflow=slug, limit=1).results[0].id == second.execution_id
    assert client.executions.list(workflow=slug, status="failed").count == 0

    shown = client.executions.get(first.execution_id)
    assert (shown.status, shown.channel, shown.workflow, shown.inputs) == ("completed", "api", slug, {"name": "one"})
    assert shown.outputs == {"message": "Hello, one!"} and shown.finished
    assert [step["node"] for step in shown.steps] == ["greet"]
    assert shown.created_at is not None and shown.finished_at >= shown.created_at

    with pytest.raises(ConflictError) as finished:
        client.executions.cancel(first.execution_id)
    assert finished.value.status == 409
    assert client.executions.get(first.execution_id).status == "completed"


def test_sessions_bind_runs(nexus, unique):
    client = nexus()
    slug = unique("session-flow")
    client.workflows.create(slug, template="basic")
    client.workflows.deploy(slug)

    session = client.sessions.create("ada@example.com", {"ticket": 42})
    assert session.id.startswith("ses_")
    assert (session.user, session.metadata) == ("ada@example.com", {"ticket": 42})
    assert session.expires_at > session.created_at

    run = client.workflows.execute(slug, {"name": "Ada"}, session=session.id)
    assert client.sessions.get(session.id).metadata == {"ticket": 42}
    runs = client.sessions.executions(session.id)
    assert [(e.id, e.session, e.channel) for e in runs] == [(run.execution_id, session.id, "api")]
    assert [e.id for e in client.executions.list(session=session.id)] == [run.execution_id]
    assert client.sessions.update(session.id, {"ticket": 43}).metadata == {"ticket": 43}


def test_errors_map_to_exceptions_with_code_detail_and_fields(nexus, unique):
    client = nexus()
    slug = unique("errors")

    with pytest.raises(NotFoundError) as missing:
        client.executions.get("run_doesnotexist")
    assert (missing.value.status, missing.value.code) == (404, "execution_not_found")

    with pytest.raises(ValidationError) as unknown_field:
        client.workflows.create(slug, template="basic", name="x" * 201)
    assert unknown_field.value.status == 400
    assert unknown_field.value.code == "invalid"
    assert set(unknown_field.value.fields) == {"name"}

    client.workflows.create(slug, template="basic")
    client.workflows.deploy(slug)
    with pytest.raises(ValidationError) as bad_inputs:
        client.workflows.execute(slug, {"name": 42})
    assert bad_inputs.value.code == "invalid_inputs"
    assert "inputs.name" in bad_inputs.value.fields
    assert "inputs.name" in str(bad_inputs.value)

    with pytest.raises(ConflictError) as taken:
        client.workflows.create(slug, template="basic")
    assert taken.value.status == 409

    with pytest.raises(PermissionDeniedError) as denied:
        nexus("viewer").workflows.delete(slug)
    assert denied.value.status == 403
    assert client.workflows.get(slug).slug == slug  # still there


def test_a_wrong_or_missing_credential_is_an_authentication_error(nexus, live_server):
    with pytest.raises(AuthenticationError) as wrong:
        nexus(api_key="nxk_deadbeef_nope").workflows.list()
    assert (wrong.value.status, wrong.value.code) == (401, "invalid_credentials")
    with NexusClient(live_server.url) as anonymous, pytest.raises(AuthenticationError) as missing:
        anonymous.workflows.list()
    assert missing.value.code == "not_authenticated"


def test_bad_ids_are_refused_before_any_request(nexus):
    with pytest.raises(ValueError, match="ref must be a non-empty string"):
        nexus().workflows.get("")


@pytest.fixture
def fresh_key(sdk_world, django_db_blocker):
    """A new owner key of `sdk`, committed, whose rate-limit budget no earlier request has touched."""
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal

    tenant = sdk_world["tenant"]
    system = Principal(
        kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug="sdk", role="owner", is_platform_admin=True
    )
    with django_db_blocker.unblock():
        _, raw = apikey_create(principal=system, tenant=tenant, role="owner", name="sdk-limited")
    return raw


@pytest.fixture
def per_key_limit(settings):
    """per_key_limit(n): every API key may make n requests a minute (a burst of n, then one every 60/n s)."""

    def set_limit(per_minute: int) -> None:
        settings.NEXUS_RATE_LIMIT_PLANS = {
            plan: {**limits, "credential": per_minute} for plan, limits in settings.NEXUS_RATE_LIMIT_PLANS.items()
        }

    return set_limit


def test_with_retries_the_client_waits_retry_after_and_succeeds(nexus, fresh_key, per_key_limit, monkeypatch):
    from nexus_client import client as client_module

    waits: list[float] = []
    real_sleep = client_module.time.sleep
    monkeypatch.setattr(client_module.time, "sleep", lambda seconds: (waits.append(seconds), real_sleep(seconds)))
    per_key_limit(60)  # a burst of 60, then one a second
    client = nexus(api_key=fresh_key, max_retries=3, max_retry_wait=5)
    answered, counts = 0, set()
    while not waits and answered < 200:  # until the burst is spent and a 429 was waited out
        counts.add(client.workflows.list().count)
        answered += 1
    assert waits == [1.0] and answered > 60
    assert {client.workflows.list().count} == counts  # every answer, the waited-for one included, is the listing


def test_a_wait_longer_than_max_retry_wait_is_not_attempted(nexus, fresh_key, per_key_limit):
    per_key_limit(1)
    client = nexus(api_key=fresh_key, max_retries=5, max_retry_wait=2)
    client.workflows.list()
    started = time.monotonic()
    with pytest.raises(RateLimitError) as limited:
        client.workflows.list()
    assert limited.value.retry_after > 2 and time.monotonic() - started < 2
