"""Shared fixtures: tenants and keys created once per session in the real test database; the order of the tiers."""

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
# Fast failures first: unit tests take milliseconds, integration tests share one database, e2e tests start processes.
TIERS = {"unit": 0, "integration": 1, "ldap": 1, "e2e": 2}


def tier(path: Path) -> int:
    """0 for tests/unit, 2 for tests/e2e, 1 for the rest (integration, ldap, files given outside tests/)."""
    parts = path.resolve().relative_to(TESTS).parts if path.resolve().is_relative_to(TESTS) else ()
    return TIERS.get(parts[0], 1) if len(parts) > 1 else 1


def module_marks(module) -> set[str]:
    marks = getattr(module, "pytestmark", [])
    return {mark.name for mark in (marks if isinstance(marks, list) else [marks])}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Run unit, then integration, then e2e tests (a stable sort keeps each tier's own order), and refuse an e2e
    module without `pytestmark = pytest.mark.e2e`: `-m "not e2e"` must leave every process-starting test out."""
    e2e_modules = {item.module for item in items if tier(item.path) == 2}
    unmarked = sorted(module.__name__ for module in e2e_modules if "e2e" not in module_marks(module))
    if unmarked:
        raise pytest.UsageError(f"e2e modules without pytestmark = pytest.mark.e2e: {', '.join(unmarked)}")
    items.sort(key=lambda item: tier(item.path))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database as a fresh installation has it: with the public tenant, which recording audit rows
    that belong to no tenant reads (and never creates)."""
    from django.db import connection

    from apps.tenants.services import public_tenant_ensure

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        public_tenant_ensure()


@pytest.fixture(scope="session")
def nexus_world(django_db_setup, django_db_blocker):
    """Two tenants with a key for every role in each (owner, admin, developer, operator, viewer), a platform admin."""
    from django.db import connection

    from apps.accounts.models import Role
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.ops.bootstrap import bootstrap
    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_create_for_bootstrap

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        bootstrap(default_tenant="default")
        world = {"tenants": {}, "keys": {}}
        for slug in ("acme", "globex"):
            tenant = Tenant.objects.filter(slug=slug).first() or tenant_create_for_bootstrap(slug=slug)
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
        from apps.core.cache import cache_forget_all

        cache_forget_all()
