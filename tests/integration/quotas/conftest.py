"""Quota fixtures: tenants with limits and an owner key each, made in the test's transaction, and clean Redis
counters and slots (the database rolls back, Redis does not)."""

import pytest

from tests.integration.tenants.conftest import admin, admin_api  # noqa: F401 (fixtures: a platform admin's API client)


def _redis_clean() -> None:
    from django.db import connection

    from apps.ops.redis_client import redis_client

    client = redis_client()
    name = connection.settings_dict["NAME"]
    for pattern in (f"nexus:{name}:quota:*", f"nexus:{name}:slots:*", f"nexus:{name}:waiting:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)


@pytest.fixture(autouse=True)
def _clean_counters(db):
    from apps.quotas.limits import limits_invalidate

    _redis_clean()
    yield
    _redis_clean()
    limits_invalidate()  # limits cached from this test's (rolled back) tenants


@pytest.fixture
def make_tenant(nexus_world, db):
    """`make_tenant("slug", quota_executions=2, ...)` -> (tenant, raw owner key); the connection is left on public."""
    from django.db import connection

    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.tenants.services import tenant_create_for_bootstrap

    def make(slug: str, **limits):
        tenant = tenant_create_for_bootstrap(slug=slug, **limits)
        connection.set_schema_to_public()
        system = Principal(
            kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=slug, role="owner", is_platform_admin=True
        )
        _, raw = apikey_create(principal=system, tenant=tenant, role="owner", name=f"{slug}-owner")
        return tenant, raw

    return make


@pytest.fixture
def principal_of():
    from apps.core.principal import Principal

    def make(tenant):
        return Principal(kind="api_key", actor="apikey:test", tenant_id=tenant.pk, tenant_slug=tenant.slug, role="owner")

    return make


@pytest.fixture
def in_schema():
    """Run `function` with the connection on `tenant`'s schema, and back on public afterwards."""
    from django.db import connection

    def run(tenant, function, *args, **kwargs):
        connection.set_tenant(tenant)
        try:
            return function(*args, **kwargs)
        finally:
            connection.set_schema_to_public()

    return run


@pytest.fixture
def admin_principal(nexus_world):
    from apps.core.principal import Principal

    home = nexus_world["tenants"]["acme"]
    return Principal(
        kind="user", actor="user:platform-admin", tenant_id=home.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )
