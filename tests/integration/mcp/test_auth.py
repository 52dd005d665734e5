"""principal_from_credential: the REST API's credentials (nxk_ keys and login JWTs) resolve the same way for MCP."""

import pytest
from django.db import connection

from apps.accounts.selectors import principal_from_credential
from apps.core.errors import NotAuthenticated

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_member_cache():
    from apps.accounts.selectors import member_cache

    member_cache.clear()
    yield
    member_cache.clear()


def test_an_api_key_resolves_to_its_tenant_and_role(nexus_world):
    principal, tenant = principal_from_credential(nexus_world["keys"][("globex", "viewer")])
    assert (principal.kind, principal.role, principal.tenant_slug, tenant.slug) == ("api_key", "viewer", "globex", "globex")


def test_a_login_jwt_resolves_to_the_user_in_the_tenant_it_was_issued_for(nexus_world):
    from apps.accounts.services import membership_set, user_create
    from apps.accounts.tokens import token_pair_issue

    connection.set_schema_to_public()
    acme = nexus_world["tenants"]["acme"]
    user = user_create(username="mcp-ann", password="a-long-password-1")
    membership_set(user=user, tenant=acme, role="operator")
    access = token_pair_issue(user=user, tenant=acme, role="operator").access
    principal, tenant = principal_from_credential(access)
    assert (principal.kind, principal.actor, principal.role, tenant.slug) == ("user", "user:mcp-ann", "operator", "acme")


@pytest.mark.parametrize("raw", ["", "nxk_00000000_unknown", "garbage", "a.b.c", "Bearer nxk_x"])
def test_anything_else_is_not_authenticated(nexus_world, raw):
    with pytest.raises(NotAuthenticated):
        principal_from_credential(raw)
