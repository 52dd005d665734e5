"""No role above your own: one rule (apps/accounts/access.py `require_role_at_most`) for API keys, members and
API applications, on every channel; platform admins and the CLI's own system principal are exempt."""

import json

import pytest

from apps.accounts.models import ApiKey, Membership
from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.principal import Principal
from apps.integrations.models import Application

pytestmark = pytest.mark.django_db


def _owner_keys(acme) -> set[str]:
    return set(ApiKey.objects.filter(tenant=acme, role="owner").values_list("id", flat=True))


def test_an_admin_may_not_mint_an_owner_key_from_the_cli(nexus, make_user, acme):
    make_user("ada", acme="admin")
    before = _owner_keys(acme)
    seen = list(AuditEvent.objects.values_list("pk", flat=True))  # audit rows outlive each test's transaction

    code, out, err = nexus("--tenant=acme", "--as=ada", "apikey", "create", "--role=owner", "--name=mine now")

    assert (code, out) == (4, "")
    assert "role 'admin' may not create an API key with role 'owner': no role above your own" in err
    assert _owner_keys(acme) == before
    denial = AuditEvent.objects.filter(action="access.denied", actor="user:ada").exclude(pk__in=seen).get()
    assert (denial.target, denial.outcome, denial.tenant_id) == ("apikey.create", "denied", acme.pk)
    assert denial.details["reason"] == "role 'admin' may not create an API key with role 'owner': no role above your own"


def test_an_admin_mints_keys_up_to_its_own_role(nexus, make_user, acme):
    make_user("ada", acme="admin")
    code, out, err = nexus("--tenant=acme", "--as=ada", "apikey", "create", "--role=admin", "--json")
    assert code == 0, err
    assert json.loads(out)["role"] == "admin"


def test_the_cli_without_as_acts_as_a_platform_admin_and_may_mint_an_owner_key(nexus, acme):
    code, out, err = nexus("--tenant=acme", "apikey", "create", "--role=owner", "--json")
    assert code == 0, err
    assert json.loads(out)["role"] == "owner"


def test_an_application_with_keys_scope_may_not_mint_a_key_above_its_role(acme):
    from apps.accounts.services import apikey_create

    app = Principal(
        kind="application",
        actor="app:app_test",
        tenant_id=acme.pk,
        tenant_slug="acme",
        role="admin",
        application_id="app_test",
        scopes=frozenset({"apikeys:write"}),
    )
    before = _owner_keys(acme)
    with pytest.raises(PermissionDenied, match="role 'admin' may not create an API key with role 'owner'"):
        apikey_create(principal=app, tenant=acme, role="owner")
    assert _owner_keys(acme) == before


def test_an_admin_may_not_promote_or_remove_an_owner(nexus, make_user, acme):
    make_user("ada", acme="admin")
    make_user("own", acme="owner")
    make_user("dev", acme="developer")

    code, _, err = nexus("--tenant=acme", "--as=ada", "member", "add", "dev", "--role=owner")
    assert code == 4 and "role 'admin' may not give a member role 'owner': no role above your own" in err
    code, _, err = nexus("--tenant=acme", "--as=ada", "member", "add", "own", "--role=viewer")
    assert code == 4 and "role 'admin' may not manage a member with role 'owner': no role above your own" in err
    assert dict(Membership.objects.filter(tenant=acme).values_list("user__username", "role")) == {
        "ada": "admin",
        "own": "owner",
        "dev": "developer",
    }


def test_an_admin_key_may_not_register_an_owner_application_over_the_api(api, nexus_world, acme):
    from django.db import connection

    from apps.accounts.services import apikey_create

    system = Principal(
        kind="system", actor="system:test", tenant_id=acme.pk, tenant_slug="acme", role="owner", is_platform_admin=True
    )
    _, raw = apikey_create(principal=system, tenant=acme, role="admin", name="acme-admin")
    connection.set_schema_to_public()

    refused = api(key=raw).post("/api/v1/apps/", {"name": "too strong", "role": "owner"})

    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "role 'admin' may not register an application with role 'owner': no role above your own",
        "code": "permission_denied",
    }
    assert not Application.objects.filter(name="too strong").exists()
    assert api(key=raw).post("/api/v1/apps/", {"name": "as strong", "role": "admin"}).status_code == 201
