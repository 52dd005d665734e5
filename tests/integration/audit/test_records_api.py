"""Every mutating REST call, run, login and denial leaves exactly one audit row, labelled right."""

import pytest
from django.db import connection, transaction

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.workflows.models import Workflow
from tests.integration.audit.conftest import only
from tests.integration.tenants.conftest import in_thread

pytestmark = pytest.mark.django_db

FAILING = {
    "nodes": [{"id": "boom", "type": "template", "config": {"template": "{{ 1 // 0 }}"}}],
    "outputs": {"result": "nodes.boom"},
}


def test_the_workflow_lifecycle_over_the_api(api, audit_rows, key_actor, nexus_world):
    acme, owner, actor = nexus_world["tenants"]["acme"], api(), key_actor("acme", "owner")
    common = {"tenant_id": acme.pk, "actor": actor, "actor_type": "api_key", "channel": "api", "outcome": "success"}

    created = owner.post("/api/v1/workflows/", {"slug": "audited", "template": "basic"})
    assert created.status_code == 201
    workflow_id = created.json()["id"]
    row = only(audit_rows(), action="workflow.created", target=workflow_id, **common)
    assert row.details["slug"] == "audited" and row.details["version"] == 1
    assert row.ip == "127.0.0.1" and row.request_id == created["X-Request-ID"]

    mark = audit_rows()[-1].seq
    assert owner.patch("/api/v1/workflows/audited/", {"name": "Audited"}).status_code == 200
    only(audit_rows(after=mark), action="workflow.updated", target=workflow_id, **common)

    mark = audit_rows()[-1].seq
    deployed = owner.post("/api/v1/workflows/audited/deploy/", {"environment": "staging"})
    assert deployed.status_code == 200
    row = only(audit_rows(after=mark), action="workflow.deployed", target=workflow_id, **common)
    assert (row.details["environment"], row.details["version"]) == ("staging", 1)

    mark = audit_rows()[-1].seq
    assert owner.delete("/api/v1/workflows/audited/").status_code == 204
    only(audit_rows(after=mark), action="workflow.deleted", target=workflow_id, **common)


def test_a_run_over_the_api_leaves_one_execution_row(api, audit_rows, key_actor, nexus_world):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "hello", "template": "basic"})
    owner.post("/api/v1/workflows/hello/deploy/", {})
    mark = audit_rows()[-1].seq
    operator = api(role="operator")

    response = operator.post("/api/v1/workflows/hello/execute/", {"inputs": {"name": "Audit"}})

    assert response.status_code == 200
    run_id = response.json()["execution_id"]
    row = only(
        audit_rows(after=mark),
        action="execution.completed",
        target=run_id,
        tenant_id=nexus_world["tenants"]["acme"].pk,
        actor=key_actor("acme", "operator"),
        actor_type="api_key",
        channel="api",
        outcome="success",
        ip="127.0.0.1",
        request_id=response["X-Request-ID"],
    )
    assert row.details["workflow"] == "hello" and row.details["status"] == "completed" and row.details["inline"] is True


def test_a_failed_run_is_recorded_with_outcome_error(api, audit_rows):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "broken", "definition": FAILING})
    owner.post("/api/v1/workflows/broken/deploy/", {})
    mark = audit_rows()[-1].seq

    body = owner.post("/api/v1/workflows/broken/execute/", {}).json()

    assert body["status"] == "failed"
    row = only(audit_rows(after=mark), action="execution.failed", target=body["execution_id"], outcome="error")
    assert row.details["error_code"] == body["error"]["code"]


def test_a_denied_call_leaves_access_denied_and_nothing_else(api, audit_rows, key_actor, nexus_world):
    acme = nexus_world["tenants"]["acme"]
    api().post("/api/v1/workflows/", {"slug": "keep-me", "template": "basic"})
    mark = audit_rows()[-1].seq

    response = api(role="viewer").delete("/api/v1/workflows/keep-me/")

    assert response.status_code == 403
    row = only(
        audit_rows(after=mark),
        action="access.denied",
        target="workflow.delete",
        tenant_id=acme.pk,
        actor=key_actor("acme", "viewer"),
        actor_type="api_key",
        channel="api",
        outcome="denied",
        request_id=response["X-Request-ID"],
    )
    assert row.details == {"permission": "workflow.delete", "reason": "role 'viewer' may not workflow delete"}
    connection.set_tenant(acme)
    assert Workflow.objects.filter(slug="keep-me", deleted_at__isnull=True).exists()


def test_a_denial_outlives_the_transaction_that_refused_it(owner, acme, audit_rows):
    """Refused inside an atomic block that rolls back: the row is committed on a connection of its own."""
    from apps.core.principal import Principal
    from apps.workflows.services import workflow_create

    viewer = Principal(kind="api_key", actor="apikey:test-viewer", tenant_id=acme.pk, tenant_slug="acme", role="viewer")
    # The first write must share the transaction that the refusal rolls back.
    with pytest.raises(PermissionDenied), transaction.atomic():  # noqa: PT012
        workflow_create(principal=owner, tenant_id=acme.pk, slug="rolled-back", template="basic")
        workflow_create(principal=viewer, tenant_id=acme.pk, slug="refused", template="basic")

    rows = audit_rows()
    assert [(r.action, r.actor, r.target) for r in rows] == [("access.denied", "apikey:test-viewer", "workflow.create")]
    # Committed: another connection, outside this test's transaction, sees it.
    seen = in_thread(lambda: AuditEvent.objects.filter(id=rows[0].id).exists())
    assert seen is True


def test_a_failed_and_a_good_login_are_recorded(login, make_user, audit_rows, nexus_world):
    make_user("ann", acme="developer")

    failed = login("ann", "wrong-password-here", tenant="acme")
    good = login("ann", "a-long-password-1", tenant="acme", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert failed.status_code == 401 and good.status_code == 200
    failure, success = audit_rows()
    # a failure proves nothing about who sent it: unauthenticated, with what the client claimed
    assert (failure.action, failure.outcome, failure.ip) == ("auth.login_failed", "denied", "127.0.0.1")
    assert (failure.actor, failure.actor_type, failure.target, failure.channel) == ("anonymous", "anonymous", "", "api")
    assert failure.details == {"claimed_username": "ann", "claimed_tenant": "acme", "reason": "invalid_credentials"}
    assert (success.action, success.outcome, success.ip) == ("auth.login_succeeded", "success", "198.51.100.7")
    assert (success.actor, success.actor_type, success.target, success.channel) == ("user:ann", "user", "user:ann", "api")
    assert success.tenant_id == failure.tenant_id == nexus_world["tenants"]["acme"].pk


def test_a_login_to_no_known_tenant_is_recorded_under_the_public_tenant(login, audit_rows):
    from apps.audit.recorder import public_tenant_id

    assert login("nobody", "whatever-it-is", tenant="no-such-tenant").status_code == 401
    row = only(audit_rows(), action="auth.login_failed", tenant_id=public_tenant_id(), actor="anonymous", outcome="denied")
    assert row.details["claimed_username"] == "nobody"


def test_login_attempted_records_cli_logins_too(audit_rows):
    from apps.accounts.services import login_attempted

    login_attempted(username="bob", tenant_slug=None, outcome="failure", ip=None, reason="invalid_credentials", channel="cli")

    row = only(audit_rows(), action="auth.login_failed", channel="cli", actor="anonymous", ip=None)
    assert row.details == {"claimed_username": "bob", "claimed_tenant": None, "reason": "invalid_credentials"}


def test_failed_login_rows_are_capped_per_tenant_and_minute(login, audit_rows, settings, nexus_world):
    import uuid

    from apps.ops.metrics import counter_field, counter_key
    from apps.ops.redis_client import redis_client

    # given a cap of 3 rows a minute, counted from zero (a key prefix of this test's own)
    settings.NEXUS_RATE_LIMIT_PREFIX = f"nexus:rl-test:{uuid.uuid4().hex[:12]}:"
    settings.NEXUS_LOGIN_AUDIT_PER_MINUTE = 3
    field = counter_field("rate_limited", {"tenant": "globex", "scope": "login_audit"})
    counted_before = int(redis_client().hget(counter_key("rate_limited"), field) or 0)

    # when an outsider sends 8 failed logins naming globex, as 8 different "users"
    statuses = [login(f"boss-{n}", "guess-guess-guess", tenant="globex").status_code for n in range(8)]

    # then every one is refused, 3 are recorded one by one, one row marks the rest, which are counted
    assert statuses == [401] * 8
    rows = audit_rows(tenant_id=nexus_world["tenants"]["globex"].pk)
    assert [(row.action, row.actor, row.details.get("claimed_username")) for row in rows] == [
        ("auth.login_failed", "anonymous", "boss-0"),
        ("auth.login_failed", "anonymous", "boss-1"),
        ("auth.login_failed", "anonymous", "boss-2"),
        ("auth.login_failures_suppressed", "anonymous", None),
    ]
    assert rows[-1].details == {"limit_per_minute": 3, "counted_in": 'nexus_rate_limited_total{scope="login_audit"}'}
    assert int(redis_client().hget(counter_key("rate_limited"), field)) - counted_before == 5
    # and another tenant's log is not affected
    assert login("boss-9", "guess-guess-guess", tenant="acme").status_code == 401
    only(audit_rows(tenant_id=nexus_world["tenants"]["acme"].pk), action="auth.login_failed", actor="anonymous")
    for key in redis_client().scan_iter(settings.NEXUS_RATE_LIMIT_PREFIX + "*"):
        redis_client().delete(key)


def test_api_keys_created_and_revoked(acme, owner, audit_rows):
    from apps.accounts.services import apikey_create, apikey_revoke

    key, _ = apikey_create(principal=owner, tenant=acme, role="viewer", name="ci")
    apikey_revoke(principal=owner, tenant=acme, key_id=key.id)

    created, revoked = audit_rows()
    assert (created.action, created.target, created.details["role"]) == ("apikey.created", key.id, "viewer")
    assert (revoked.action, revoked.target, revoked.details["already_revoked"]) == ("apikey.revoked", key.id, False)
    assert {created.tenant_id, revoked.tenant_id} == {acme.pk} and {created.actor, revoked.actor} == {owner.actor}


def test_datasets_uploaded_and_deleted_over_the_api(api, audit_rows, nexus_world):
    owner = api()
    uploaded = owner.post("/api/v1/datasets/", {"name": "sales", "rows": [{"region": "eu", "amount": 3}]})
    assert uploaded.status_code == 201
    assert owner.delete("/api/v1/datasets/sales/").status_code == 204

    upload, delete = audit_rows()
    dataset_id = uploaded.json()["id"]
    assert (upload.action, upload.target, upload.details["rows"], upload.channel) == ("dataset.uploaded", dataset_id, 1, "api")
    assert (delete.action, delete.target, delete.outcome) == ("dataset.deleted", dataset_id, "success")


def test_tenants_created_suspended_resumed_deleted_over_the_api(admin_api, audit_rows, api):
    created = admin_api.post("/api/v1/tenants/", {"slug": "initech"})
    assert created.status_code == 201
    assert admin_api.post("/api/v1/tenants/initech/suspend/").status_code == 200
    assert admin_api.post("/api/v1/tenants/initech/resume/").status_code == 200
    assert admin_api.delete("/api/v1/tenants/initech/?confirm=initech").status_code == 204

    rows = audit_rows()
    assert [r.action for r in rows] == ["tenant.created", "tenant.suspended", "tenant.resumed", "tenant.deleted"]
    assert len({r.tenant_id for r in rows}) == 1  # the tenant acted on, kept after it is gone
    assert all((r.target, r.actor, r.channel) == ("tenant:initech", "user:platform-admin", "api") for r in rows)


def test_a_tenant_admin_creating_a_tenant_is_denied(api, audit_rows, nexus_world):
    assert api(role="owner").post("/api/v1/tenants/", {"slug": "sneaky"}).status_code == 403
    only(
        audit_rows(),
        action="access.denied",
        target="tenant.create",
        outcome="denied",
        tenant_id=nexus_world["tenants"]["acme"].pk,
    )


def test_request_ids_are_kept_or_made_and_forwarded_ips_believed_only_from_the_proxy(api, audit_rows, client):
    owner = api()
    headers = {
        "HTTP_AUTHORIZATION": f"Bearer {owner.key}",
        "HTTP_X_REQUEST_ID": "trace-42",
        "HTTP_X_FORWARDED_FOR": "10.0.0.9, 203.0.113.5",
    }
    response = client.post(
        "/api/v1/workflows/", {"slug": "traced", "template": "basic"}, content_type="application/json", **headers
    )
    assert response["X-Request-ID"] == "trace-42"
    only(audit_rows(), request_id="trace-42", ip="203.0.113.5")  # the proxy's entry, not what the client wrote

    mark = audit_rows()[-1].seq
    headers.update(REMOTE_ADDR="192.0.2.1", HTTP_X_REQUEST_ID="bad id with spaces")
    response = client.post(
        "/api/v1/workflows/", {"slug": "traced-2", "template": "basic"}, content_type="application/json", **headers
    )
    row = only(audit_rows(after=mark))
    assert row.ip == "192.0.2.1"  # not from our proxy: the header is ignored
    assert row.request_id == response["X-Request-ID"] != "bad id with spaces"
