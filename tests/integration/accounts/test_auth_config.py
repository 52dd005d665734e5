"""Login settings from environment values: the JWT signing key and the LDAP role map fail early when wrong."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.auth_config import dn_key, jwt_signing_key, ldap_settings, parse_role_map

LDAP = {
    "uri": "ldap://127.0.0.1:1",
    "bind_dn": "",
    "bind_password": "",
    "user_search_base": "ou=people,dc=example,dc=test",
    "group_search_base": "ou=groups,dc=example,dc=test",
    "role_map": "{}",
}


def test_the_signing_key_is_derived_long_and_not_the_secret_key():
    key = jwt_signing_key(configured="", secret_key="short")

    assert len(key) == 64 and key != "short"
    assert key == jwt_signing_key(configured="", secret_key="short")
    assert key != jwt_signing_key(configured="", secret_key="another")


def test_a_configured_signing_key_must_be_32_bytes():
    assert jwt_signing_key(configured="k" * 32, secret_key="x") == "k" * 32
    with pytest.raises(ImproperlyConfigured, match="at least 32 bytes"):
        jwt_signing_key(configured="k" * 31, secret_key="x")


def test_the_test_settings_sign_with_a_long_key(settings):
    assert len(settings.SIMPLE_JWT["SIGNING_KEY"]) >= 32
    assert settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds() == 15 * 60
    assert settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].days == 1


def test_group_dns_compare_without_case_or_blanks():
    assert dn_key(" CN=Developers, OU=Groups,dc=Example , dc=test ") == "cn=developers,ou=groups,dc=example,dc=test"


def test_the_role_map_is_keyed_by_normalised_dn():
    role_map = parse_role_map('{"CN=Devs, ou=groups,dc=example,dc=test": {"tenant": "acme", "role": "developer"}}')

    assert role_map == {"cn=devs,ou=groups,dc=example,dc=test": {"tenant": "acme", "role": "developer"}}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"cn=a": "acme"}', "must be {'tenant'"),
        ('{"cn=a": {"tenant": "acme", "role": "emperor"}}', "one of viewer, operator, developer, admin, owner"),
        ('{"cn=a": {"role": "viewer"}}', "must be {'tenant'"),
    ],
)
def test_a_bad_role_map_stops_the_start(raw, message):
    with pytest.raises(ImproperlyConfigured, match=message.replace("{", r"\{").replace("[", r"\[")):
        ldap_settings(**{**LDAP, "role_map": raw})


def test_ldap_needs_both_search_bases():
    with pytest.raises(ImproperlyConfigured, match="NEXUS_LDAP_GROUP_SEARCH_BASE"):
        ldap_settings(**{**LDAP, "group_search_base": ""})


def test_ldap_settings_add_the_backend_after_the_local_one():
    values = ldap_settings(**LDAP)

    assert values["AUTHENTICATION_BACKENDS"] == [
        "django.contrib.auth.backends.ModelBackend",
        "apps.accounts.ldap_backend.NexusLDAPBackend",
    ]
    assert values["AUTH_LDAP_SERVER_URI"] == "ldap://127.0.0.1:1"
    assert values["AUTH_LDAP_USER_SEARCH"].filterstr == "(uid=%(user)s)"
    assert values["AUTH_LDAP_GROUP_SEARCH"].base_dn == "ou=groups,dc=example,dc=test"
