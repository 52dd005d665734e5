"""Accounts fixtures: users with memberships, a login helper, and LDAP switched on against a private slapd."""

import json

import pytest

from tests.ldap.slapd import slapd  # noqa: F401 (a session fixture, imported to be usable here)


@pytest.fixture(autouse=True)
def _fresh_member_cache():
    """Membership lookups are cached per process; a rolled-back test must not leave its users behind."""
    from apps.accounts.services import member_cache

    member_cache.clear()
    yield
    member_cache.clear()


@pytest.fixture
def make_user(nexus_world, db):
    """make_user("ann", acme="developer", globex="viewer") -> a local user with those memberships."""
    from django.db import connection

    from apps.accounts.services import membership_set, user_create

    def make(username: str, password: str = "a-long-password-1", *, platform_admin: bool = False, **roles: str):
        connection.set_schema_to_public()
        user = user_create(username=username, password=password, is_platform_admin=platform_admin)
        for slug, role in roles.items():
            membership_set(user=user, tenant=nexus_world["tenants"][slug], role=role)
        return user

    return make


@pytest.fixture
def login(client):
    """POST /api/v1/auth/token/ and return the response."""

    def post(username: str, password: str, tenant: str | None = None, **headers):
        body = {"username": username, "password": password}
        if tenant is not None:
            body["tenant"] = tenant
        return client.post("/api/v1/auth/token/", json.dumps(body), content_type="application/json", **headers)

    return post


@pytest.fixture
def bearer(client):
    """A JSON client for the REST API that sends `Authorization: Bearer <token>`."""
    from tests.integration.conftest import ApiClient

    return lambda token: ApiClient(client, token)


@pytest.fixture
def ldap_enabled(slapd, settings, nexus_world, db):  # noqa: F811 (the fixture imported above)
    """LDAP switched on exactly as NEXUS_LDAP_* would (apps.accounts.auth_config.ldap_settings), for one test;
    the role map names nexus_world's tenants."""
    for name, value in slapd.django_settings().items():
        setattr(settings, name, value)
    return slapd
