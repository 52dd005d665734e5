"""One `require_platform_admin` (apps/accounts/access.py): every platform action is registered, and every
refusal of one, tenants' included, leaves an `access.denied` row naming the action."""

import pytest

from apps.accounts.access import require_platform_admin
from apps.core.errors import PermissionDenied
from apps.core.principal import Principal
from apps.tenants.models import Tenant
from apps.tenants.selectors import tenant_list_all_tenants
from apps.tenants.services import tenant_create, tenant_delete, tenant_resume, tenant_suspend, tenant_update
from tests.integration.audit.conftest import only

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant_owner(nexus_world):
    acme = nexus_world["tenants"]["acme"]
    return Principal(kind="api_key", actor="apikey:test-owner", tenant_id=acme.pk, tenant_slug="acme", role="owner")


def test_listing_tenants_as_a_tenant_owner_is_an_audited_denial(tenant_owner, audit_rows):
    with pytest.raises(PermissionDenied, match="^only platform admins may list tenants$"):
        tenant_list_all_tenants(principal=tenant_owner)

    row = only(audit_rows(), action="access.denied", target="tenant.list", outcome="denied", actor="apikey:test-owner")
    assert (row.tenant_id, row.details) == (
        tenant_owner.tenant_id,
        {"permission": "tenant.list", "reason": "only platform admins may list tenants"},
    )


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("tenant.create", lambda p: tenant_create(principal=p, slug="sneaky")),
        ("tenant.update", lambda p: tenant_update(principal=p, slug="globex", plan="gold")),
        ("tenant.suspend", lambda p: tenant_suspend(principal=p, slug="globex")),
        ("tenant.resume", lambda p: tenant_resume(principal=p, slug="globex")),
        ("tenant.delete", lambda p: tenant_delete(principal=p, slug="globex", confirm="globex")),
    ],
)
def test_every_tenant_service_refuses_with_its_registered_action(tenant_owner, audit_rows, action, call):
    before = list(Tenant.objects.order_by("pk").values_list("slug", "plan", "is_active"))

    with pytest.raises(PermissionDenied, match="^only platform admins may "):
        call(tenant_owner)

    only(audit_rows(), action="access.denied", target=action, outcome="denied", tenant_id=tenant_owner.tenant_id)
    assert list(Tenant.objects.order_by("pk").values_list("slug", "plan", "is_active")) == before


def test_an_unregistered_platform_action_is_refused_even_to_a_platform_admin(nexus_world, audit_rows):
    admin = Principal(kind="user", actor="user:root", tenant_id=None, tenant_slug=None, role=None, is_platform_admin=True)

    with pytest.raises(PermissionDenied, match="^only platform admins may tenant rename$"):
        require_platform_admin(admin, "tenant.rename")

    only(audit_rows(), action="access.denied", target="tenant.rename", actor="user:root")


def test_no_principal_is_refused_and_recorded_as_anonymous(nexus_world, audit_rows):
    with pytest.raises(PermissionDenied, match="^only platform admins may create tenants$"):
        require_platform_admin(None, "tenant.create")

    only(audit_rows(), action="access.denied", target="tenant.create", actor="anonymous", actor_type="anonymous")
