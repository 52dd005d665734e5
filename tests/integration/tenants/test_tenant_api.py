"""Tenant administration over the REST API and the services: platform admins only, confirmations, suspension."""

import pytest
from django.db import connection

from apps.accounts.models import ApiKey, Membership
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.tenants.models import Domain, Tenant
from apps.tenants.services import tenant_create, tenant_delete, tenant_resume, tenant_suspend
from tests.integration.tenants.conftest import schema_present

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nexus_world")]


def _state(slug: str) -> tuple:
    tenant = Tenant.objects.filter(slug=slug).first()
    schema = f"t_{slug.replace('-', '_')}"
    return (
        tenant and (tenant.is_active, tenant.plan),
        Domain.objects.filter(tenant=tenant).count() if tenant else 0,
        ApiKey.objects.filter(tenant=tenant).count() if tenant else 0,
        schema_present(schema),
    )


def test_a_platform_admin_creates_lists_and_shows_tenants(admin_api):
    response = admin_api.post(
        "/api/v1/tenants/",
        {"slug": "initech", "name": "Initech", "plan": "enterprise", "quota_workflows": 50, "isolation": "standard"},
    )
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created == {
        "slug": "initech",
        "name": "Initech",
        "plan": "enterprise",
        "quotas": {"workflows": 50, "executions": None, "mail_per_day": None},
        "usage": {"workflows": 0, "executions_this_period": 0, "period": created["usage"]["period"]},
        "isolation": "standard",
        "max_concurrent_runs": None,
        "active": True,
        "schema": "t_initech",
        "created_at": created["created_at"],
    }
    assert schema_present("t_initech")
    assert Domain.objects.filter(tenant__slug="initech", domain="initech.localhost", is_primary=True).exists()

    listed = admin_api.get("/api/v1/tenants/").json()
    slugs = [t["slug"] for t in listed["results"]]
    assert listed["count"] == len(slugs) and {"acme", "globex", "default", "initech"} <= set(slugs)
    assert "template" not in slugs and "public" not in slugs and slugs == sorted(slugs)
    assert admin_api.get("/api/v1/tenants/initech/").json() == created


def test_defaults_strict_isolation_and_unlimited_quotas(admin_api):
    created = admin_api.post("/api/v1/tenants/", {"slug": "hooli"}).json()
    assert (created["name"], created["plan"], created["isolation"]) == ("hooli", "standard", "strict")
    assert created["quotas"] == {"workflows": None, "executions": None, "mail_per_day": None}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"slug": "Bad Slug"}, 400, "invalid", "slug"),
        ({"slug": "ab"}, 400, "invalid", "slug"),
        ({"slug": "public"}, 400, "invalid", "slug"),
        ({"slug": "acme"}, 409, "tenant_exists", "slug"),
        ({"slug": "newco", "isolation": "loose"}, 400, "invalid", "isolation"),
        ({"slug": "newco", "quota_workflows": -1}, 400, "invalid", "quota_workflows"),
        ({"slug": "newco", "quota_executions": "many"}, 400, "invalid", "quota_executions"),
        ({"slug": "newco", "plan": "Gold Plan"}, 400, "invalid", "plan"),
        ({"slug": "newco", "colour": "red"}, 400, "invalid", "colour"),
        ({}, 400, "invalid", "slug"),
    ],
)
def test_bad_creations_are_refused_with_the_field_and_create_nothing(admin_api, body, status, code, field):
    before = Tenant.objects.count()
    response = admin_api.post("/api/v1/tenants/", body)
    assert response.status_code == status
    assert response.json()["code"] == code and field in response.json()["fields"]
    assert Tenant.objects.count() == before and not schema_present("t_newco")


def test_an_api_key_is_not_a_platform_admin_and_changes_nothing(api, nexus_world):
    owner = api("acme", "owner")
    before = {slug: _state(slug) for slug in ("acme", "globex")}
    for method, path, body in [
        ("get", "/api/v1/tenants/", None),
        ("post", "/api/v1/tenants/", {"slug": "sneaky"}),
        ("post", "/api/v1/tenants/globex/suspend/", {}),
        ("post", "/api/v1/tenants/acme/suspend/", {}),
        ("post", "/api/v1/tenants/acme/resume/", {}),
        ("delete", "/api/v1/tenants/globex/?confirm=globex", None),
        ("delete", "/api/v1/tenants/acme/?confirm=acme", None),
    ]:
        if method == "delete":
            response = owner.client.delete(path, **owner._headers())
        else:
            response = getattr(owner, method)(path, body) if body is not None else owner.get(path)
        assert response.status_code == 403, (method, path)
        assert response.json()["code"] == "permission_denied"
    connection.set_schema_to_public()
    assert {slug: _state(slug) for slug in ("acme", "globex")} == before
    assert not Tenant.objects.filter(slug="sneaky").exists() and not schema_present("t_sneaky")


def test_a_tenants_own_key_sees_its_tenant_and_no_other(api):
    viewer = api("acme", "viewer")
    response = viewer.get("/api/v1/tenants/acme/")
    assert response.status_code == 200 and response.json()["slug"] == "acme"
    other, missing = viewer.get("/api/v1/tenants/globex/"), viewer.get("/api/v1/tenants/no-such-tenant/")
    assert other.status_code == missing.status_code == 404
    assert other.json()["code"] == missing.json()["code"] == "tenant_not_found"
    assert viewer.get("/api/v1/tenants/template/").status_code == 404


def test_suspending_stops_the_tenants_keys_and_resuming_restores_them(admin_api, api):
    acme_key = api("acme", "developer")
    assert acme_key.get("/api/v1/workflows/").status_code == 200

    response = admin_api.post("/api/v1/tenants/globex/suspend/")
    assert response.status_code == 200 and response.json()["active"] is False
    globex_key = api("globex", "owner")
    refused = globex_key.get("/api/v1/workflows/")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
    assert acme_key.get("/api/v1/workflows/").status_code == 200  # other tenants are untouched
    # suspending twice is harmless; the data stays
    assert admin_api.post("/api/v1/tenants/globex/suspend/").json()["active"] is False
    assert schema_present("t_globex")

    assert admin_api.post("/api/v1/tenants/globex/resume/").json()["active"] is True
    assert globex_key.get("/api/v1/workflows/").status_code == 200


def test_delete_needs_the_slug_as_confirmation(admin_api):
    admin_api.post("/api/v1/tenants/", {"slug": "doomed"})
    before = _state("doomed")
    for query in ("", "?confirm=", "?confirm=acme", "?confirm=DOOMED"):
        response = admin_api.client.delete(f"/api/v1/tenants/doomed/{query}", **admin_api._headers())
        assert response.status_code == 400, query
        assert response.json()["code"] == "confirmation_required" and "confirm" in response.json()["fields"]
    connection.set_schema_to_public()
    assert _state("doomed") == before and before[-1] is True


def test_delete_drops_the_schema_and_every_row_and_the_keys_stop_working(admin_api, api, client, admin):
    from apps.accounts.services import apikey_create, membership_set, user_create
    from apps.core.principal import Principal
    from tests.integration.conftest import ApiClient

    # given a tenant with a workflow in its schema, a member and a key that works
    tenant = tenant_create(slug="short-lived", principal=admin)
    system = Principal(kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=tenant.slug, role="owner")
    _, raw = apikey_create(principal=system, tenant=tenant, role="owner")
    membership_set(user=user_create(username="temp", password="a-long-password-1"), tenant=tenant, role="viewer")
    doomed_key = ApiClient(client, raw)
    assert doomed_key.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"}).status_code == 201

    # when a platform admin deletes it, confirming with its slug
    response = admin_api.client.delete("/api/v1/tenants/short-lived/?confirm=short-lived", **admin_api._headers())
    assert response.status_code == 204

    # then the schema and every row that belonged to it are gone, and its key is refused
    connection.set_schema_to_public()
    assert not schema_present("t_short_lived")
    assert not Tenant.objects.filter(slug="short-lived").exists()
    assert not Domain.objects.filter(domain="short-lived.localhost").exists()
    assert not ApiKey.objects.filter(tenant_id=tenant.pk).exists()
    assert not Membership.objects.filter(tenant_id=tenant.pk).exists()
    refused = doomed_key.get("/api/v1/workflows/")
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_credentials"
    assert admin_api.get("/api/v1/tenants/short-lived/").status_code == 404
    # the other tenants are untouched
    assert api("acme").get("/api/v1/workflows/").status_code == 200 and schema_present("t_acme")


def test_the_services_check_the_principal_themselves(owner, admin):
    connection.set_schema_to_public()
    with pytest.raises(PermissionDenied):
        tenant_create(slug="by-owner", principal=owner)
    with pytest.raises(PermissionDenied):
        tenant_create(slug="by-nobody", principal=None)  # no caller: only tenant_create_for_bootstrap
    with pytest.raises(PermissionDenied):
        tenant_suspend(principal=owner, slug="acme")
    with pytest.raises(PermissionDenied):
        tenant_resume(principal=owner, slug="acme")
    with pytest.raises(PermissionDenied):
        tenant_delete(principal=owner, slug="acme", confirm="acme")
    with pytest.raises(ValidationFailed):
        tenant_delete(principal=admin, slug="acme", confirm="")
    assert _state("acme")[0] == (True, "standard") and schema_present("t_acme")
    assert not Tenant.objects.filter(slug__in=["by-owner", "by-nobody"]).exists()


def test_the_tenant_endpoints_are_in_the_openapi_schema(api):
    paths = api().get("/api/schema/", format="json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/tenants/"])
    assert {"get", "delete"} <= set(paths["/api/v1/tenants/{slug}/"])
    assert "post" in paths["/api/v1/tenants/{slug}/suspend/"] and "post" in paths["/api/v1/tenants/{slug}/resume/"]
