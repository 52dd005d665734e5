"""The applications service's rules against privilege escalation: nobody hands out more than they hold."""

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.principal import Principal
from apps.integrations.models import Application
from apps.integrations.selectors import app_get
from apps.integrations.services import app_register, app_revoke, app_rotate, app_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def as_role(acme):
    def make(role: str, **fields) -> Principal:
        return Principal(kind="api_key", actor=f"apikey:test-{role}", tenant_id=acme.pk, tenant_slug="acme", role=role, **fields)

    return make


def test_an_admin_may_not_register_an_application_above_itself(acme, as_role):
    admin = as_role("admin")
    with pytest.raises(PermissionDenied, match="role 'admin' may not register an application with role 'owner'"):
        app_register(principal=admin, tenant=acme, name="too strong", role="owner")
    assert not Application.objects.filter(name="too strong").exists()
    assert AuditEvent.objects.filter(action="access.denied", actor="apikey:test-admin").exists()
    app, _ = app_register(principal=admin, tenant=acme, name="as strong", role="admin")
    assert app.role == "admin" and app.api_key.role == "admin"


def test_an_admin_may_not_take_over_an_owners_application(acme, as_role):
    app, _ = app_register(principal=as_role("owner"), tenant=acme, name="owner's", role="owner")
    admin = as_role("admin")
    for call in (
        lambda: app_rotate(principal=admin, tenant=acme, app_id=app.id),
        lambda: app_update(principal=admin, tenant=acme, app_id=app.id, name="mine now"),
        lambda: app_revoke(principal=admin, tenant=acme, app_id=app.id),
    ):
        with pytest.raises(PermissionDenied, match="may not manage an application with role 'owner'"):
            call()
    app.refresh_from_db()
    assert (app.name, app.revoked_at) == ("owner's", None)
    assert app_get(principal=admin, tenant_id=acme.pk, app_id=app.id).id == app.id  # reading is fine


def test_an_application_grants_at_most_its_own_scopes(acme, as_role):
    parent = as_role("admin", application_id="app_parent", scopes=frozenset({"apps:write", "workflows:read"}))
    with pytest.raises(PermissionDenied, match="do not include datasets:write"):
        app_register(principal=parent, tenant=acme, name="child", scopes=["workflows:read", "datasets:write"])
    with pytest.raises(PermissionDenied, match="every scope"):
        app_register(principal=parent, tenant=acme, name="child", scopes=[])
    child, _ = app_register(principal=parent, tenant=acme, name="child")
    assert child.scopes == ["apps:write", "workflows:read"]
    with pytest.raises(PermissionDenied):
        app_update(principal=parent, tenant=acme, app_id=child.id, scopes=["audit:read"])


def test_an_applications_scopes_gate_the_applications_service_too(acme, as_role):
    reader = as_role("owner", application_id="app_reader", scopes=frozenset({"workflows:read"}))
    with pytest.raises(PermissionDenied, match="needs scope apps:write"):
        app_register(principal=reader, tenant=acme, name="nope")
    assert not Application.objects.filter(name="nope").exists()
