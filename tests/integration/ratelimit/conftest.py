"""Rate-limit fixtures: real, low limits for one test, counted under a Redis key prefix of the test's own (Redis is
shared with other test runs and not rolled back), and tenants with unique slugs for the shared metrics."""

import uuid

import pytest

from tests.integration.tenants.conftest import admin_api  # noqa: F401 (fixture: a platform admin's API client)


@pytest.fixture
def limits(settings):
    """`limits(standard={"credential": 5})` lays those per-minute limits over the real plan table for this test,
    from zero: each call counts under a new key prefix."""
    from apps.ops.redis_client import redis_client
    from apps.ratelimit.config import rate_limit_plans

    prefixes = []

    def set_plans(**plans):
        prefixes.append(f"nexus:rl-test:{uuid.uuid4().hex[:12]}:")
        settings.NEXUS_RATE_LIMIT_PREFIX = prefixes[-1]
        settings.NEXUS_RATE_LIMIT_PLANS = rate_limit_plans(plans)

    set_plans()
    yield set_plans
    client = redis_client()
    for prefix in prefixes:
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)


@pytest.fixture
def fresh_tenant(nexus_world, db):
    """A tenant with a slug no other run uses (metrics are labelled by slug) and its owner's raw API key."""
    from django.db import connection

    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.ops.metrics import counter_key
    from apps.ops.redis_client import redis_client
    from apps.quotas.limits import limits_invalidate
    from apps.tenants.services import tenant_create_for_bootstrap

    created = []

    def make(plan: str = "standard"):
        slug = f"rl-{uuid.uuid4().hex[:10]}"
        tenant = tenant_create_for_bootstrap(slug=slug, plan=plan)
        connection.set_schema_to_public()
        system = Principal(
            kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=slug, role="owner", is_platform_admin=True
        )
        _, raw = apikey_create(principal=system, tenant=tenant, role="owner", name=f"{slug}-owner")
        created.append(slug)
        limits_invalidate()  # an id reused from a rolled-back tenant must not bring its cached plan
        return tenant, raw

    yield make
    limits_invalidate()
    client = redis_client()
    for slug in created:
        for field in client.hkeys(counter_key("rate_limited")):
            if field.decode().startswith(f"{slug}|"):
                client.hdel(counter_key("rate_limited"), field)
