"""Accounts fixtures: users with memberships, a login helper, and LDAP switched on against a private slapd."""

import pytest

from tests.ldap.slapd import slapd  # noqa: F401 (a session fixture, imported to be usable here)


@pytest.fixture(autouse=True)
def _fresh_member_cache():
    """Membership lookups are cached per process; a rolled-back test must not leave its users behind."""
    from apps.accounts.selectors import member_cache

    member_cache.clear()
    yield
    member_cache.clear()


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
