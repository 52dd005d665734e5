"""Shared fixtures: tenants and keys created once per session in the real test database."""

import pytest


@pytest.fixture(scope="session")
def nexus_world(django_db_setup, django_db_blocker):
    """Two tenants with a key for every role in each (owner, admin, developer, operator, viewer), a platform admin."""
    from django.db import connection

    from apps.accounts.models import Role
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.ops.bootstrap import bootstrap
    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_create

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        bootstrap(default_tenant="default")
        world = {"tenants": {}, "keys": {}}
        for slug in ("acme", "globex"):
            tenant = Tenant.objects.filter(slug=slug).first() or tenant_create(slug=slug)
            connection.set_schema_to_public()
            world["tenants"][slug] = tenant
            system = Principal(
                kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=slug, role="owner", is_platform_admin=True
            )
            for role in (Role.OWNER, Role.ADMIN, Role.DEVELOPER, Role.OPERATOR, Role.VIEWER):
                _, raw = apikey_create(principal=system, tenant=tenant, role=role, name=f"{slug}-{role}")
                world["keys"][(slug, role)] = raw
        connection.set_schema_to_public()
    return world


@pytest.fixture(autouse=True)
def _public_schema_after_test():
    """A request through the tenant middleware leaves the connection on a tenant; reset it. Per-process
    hot-path caches would outlive each test's rolled-back transaction; empty them."""
    yield
    from django.db import connection

    if hasattr(connection, "set_schema_to_public"):
        connection.set_schema_to_public()
        from apps.accounts.services import key_cache, member_cache, oauth_token_cache
        from apps.integrations.webhooks import webhook_subscribers_forget
        from apps.workflows.selectors import target_cache

        key_cache.clear()
        member_cache.clear()
        oauth_token_cache.clear()
        target_cache.clear()
        webhook_subscribers_forget()
