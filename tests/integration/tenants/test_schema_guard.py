"""The tenant boundary's second line: an access check for one tenant refuses to run in another tenant's schema."""

import pytest
from django.db import connection

from apps.accounts.access import require
from apps.core.principal import Principal
from apps.tenants.guard import TenantSchemaMismatch, require_schema
from apps.workflows.models import Workflow
from apps.workflows.selectors import workflow_list

pytestmark = pytest.mark.django_db


def test_a_service_for_one_tenant_in_another_tenants_schema_is_a_programming_error(nexus_world):
    acme, globex = nexus_world["tenants"]["acme"], nexus_world["tenants"]["globex"]
    admin = Principal(kind="system", actor="cli:test", tenant_id=None, tenant_slug=None, role=None, is_platform_admin=True)
    connection.set_tenant(globex)
    with pytest.raises(TenantSchemaMismatch):
        workflow_list(principal=admin, tenant_id=acme.pk)
    with pytest.raises(TenantSchemaMismatch):
        require(admin, "workflow.read", tenant_id=acme.pk)
    require(admin, "workflow.read", tenant_id=globex.pk)
    assert workflow_list(principal=admin, tenant_id=globex.pk) == list(Workflow.objects.filter(deleted_at__isnull=True))


def test_a_schema_switched_by_name_alone_is_checked_too(nexus_world):
    acme, globex = nexus_world["tenants"]["acme"], nexus_world["tenants"]["globex"]
    connection.set_schema(globex.schema_name)  # as tenant-schemas-celery restores it: no tenant object
    with pytest.raises(TenantSchemaMismatch):
        require_schema(acme.pk)
    require_schema(globex.pk)
    connection.set_schema_to_public()  # the shared tables are filtered by tenant id; tenant tables do not exist
    require_schema(acme.pk)


def test_a_request_switches_away_from_another_tenant_under_the_same_schema_name(api, acme):
    """A tenant deleted and created again under its slug keeps the schema's name with a new id. A web process
    whose connection still holds the old tenant must switch to the new one, not skip the switch because the
    schema name matches (the services' tenant guard would then refuse the request: a 500)."""
    from apps.tenants.models import Tenant

    gone = Tenant(pk=acme.pk + 10_000, slug=acme.slug, schema_name=acme.schema_name)  # the deleted tenant
    connection.set_tenant(gone)

    response = api(role="owner").get("/api/v1/workflows/")

    assert response.status_code == 200, response.content[:300]
    assert connection.tenant.pk == acme.pk
