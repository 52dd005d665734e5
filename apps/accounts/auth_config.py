"""Login settings built from environment values: the JWT signing setup and the optional LDAP directory.

Imported by nexus_site/settings/base.py, so it must not import Django models or anything that needs the
app registry; tests build their LDAP settings with the same function so they exercise this code.
"""

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

import ldap
from django.core.exceptions import ImproperlyConfigured
from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

from apps.accounts.roles import ROLE_RANK

# PyJWT warns about (and RFC 7518 §3.2 forbids) HMAC keys shorter than the hash: 32 bytes for HS256.
MIN_SIGNING_KEY_BYTES = 32


def jwt_signing_key(*, configured: str, secret_key: str) -> str:
    """The key that signs login tokens: NEXUS_JWT_SIGNING_KEY, or one derived from SECRET_KEY.

    Deriving (rather than reusing SECRET_KEY) keeps a JWT from ever being valid as another Django signature,
    and yields 64 hex characters whatever the length of SECRET_KEY.
    """
    if configured:
        if len(configured.encode()) < MIN_SIGNING_KEY_BYTES:
            raise ImproperlyConfigured(f"NEXUS_JWT_SIGNING_KEY must be at least {MIN_SIGNING_KEY_BYTES} bytes long")
        return configured
    return hmac.new(secret_key.encode(), b"nexus.jwt.signing-key", hashlib.sha256).hexdigest()


def simple_jwt_settings(*, signing_key: str, access_minutes: int, refresh_days: int) -> dict[str, Any]:
    return {
        "ALGORITHM": "HS256",
        "SIGNING_KEY": signing_key,
        "ACCESS_TOKEN_LIFETIME": timedelta(minutes=access_minutes),
        "REFRESH_TOKEN_LIFETIME": timedelta(days=refresh_days),
        # Each refresh spends its refresh token and hands out the next (apps/accounts/tokens.py).
        "ROTATE_REFRESH_TOKENS": True,
        "BLACKLIST_AFTER_ROTATION": True,
        "UPDATE_LAST_LOGIN": False,
        "USER_ID_FIELD": "id",
        "USER_ID_CLAIM": "user_id",
        "AUTH_HEADER_TYPES": ("Bearer",),
    }


def dn_key(dn: str) -> str:
    """A distinguished name in a form fit for comparison: lower case, no blanks around separators."""
    return re.sub(r"\s*([,=+])\s*", r"\1", dn.strip().lower())


def parse_role_map(raw: str | dict) -> dict[str, dict[str, str]]:
    """NEXUS_LDAP_ROLE_MAP: `{"<group DN>": {"tenant": "<slug>", "role": "<role>"}, ...}`, keyed by dn_key."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as error:
        raise ImproperlyConfigured(f"NEXUS_LDAP_ROLE_MAP is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured("NEXUS_LDAP_ROLE_MAP must be a JSON object keyed by group DN")
    role_map: dict[str, dict[str, str]] = {}
    for group_dn, grant in data.items():
        if not isinstance(grant, dict) or not isinstance(grant.get("tenant"), str) or grant.get("role") not in ROLE_RANK:
            raise ImproperlyConfigured(
                f"NEXUS_LDAP_ROLE_MAP[{group_dn!r}] must be {{'tenant': '<slug>', 'role': one of {', '.join(ROLE_RANK)}}}"
            )
        role_map[dn_key(group_dn)] = {"tenant": grant["tenant"], "role": grant["role"]}
    return role_map


def ldap_settings(
    *,
    uri: str,
    bind_dn: str,
    bind_password: str,
    user_search_base: str,
    group_search_base: str,
    role_map: str | dict,
    start_tls: bool = False,
    timeout_s: float = 5.0,
) -> dict[str, Any]:
    """django-auth-ldap's AUTH_LDAP_* settings, NEXUS_LDAP_ROLE_MAP and the backends list with LDAP added."""
    if not user_search_base or not group_search_base:
        raise ImproperlyConfigured("NEXUS_LDAP_URI needs NEXUS_LDAP_USER_SEARCH_BASE and NEXUS_LDAP_GROUP_SEARCH_BASE")
    return {
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(user_search_base, ldap.SCOPE_SUBTREE, "(uid=%(user)s)"),
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(group_search_base, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)"),
        "AUTH_LDAP_GROUP_TYPE": GroupOfNamesType(),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # A directory that does not answer must fail the login, not hang the web worker.
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: timeout_s,
            ldap.OPT_TIMEOUT: timeout_s,
            ldap.OPT_REFERRALS: 0,
        },
        "AUTH_LDAP_CACHE_TIMEOUT": 0,  # group changes apply at the next login
        "NEXUS_LDAP_ROLE_MAP": parse_role_map(role_map),
        "AUTHENTICATION_BACKENDS": ["django.contrib.auth.backends.ModelBackend", "apps.accounts.ldap_backend.NexusLDAPBackend"],
    }
