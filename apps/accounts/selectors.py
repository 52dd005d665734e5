"""Account reads: resolving a credential (API key, OAuth2 token, JWT) to a principal, listing keys, users and members."""

import hashlib
import time
from datetime import UTC, datetime
from hmac import compare_digest

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch

from apps.accounts.access import require, require_platform_admin
from apps.accounts.models import ApiKey, Membership, Role
from apps.accounts.tokens import PASSWORD_VERSION_CLAIM, access_verify
from apps.accounts.tokens import password_version as tokens_password_version
from apps.core.cache import TTLCache
from apps.core.errors import NotAuthenticated, NotFound
from apps.core.principal import Principal
from apps.tenants.models import Tenant

# Runs on every request with a key: one indexed query, schema-qualified so it needs no search_path change,
# written in SQL because the ORM's query building cost more than the query (bench/RESULTS.md). The key of an
# API application (apps/integrations) carries the application's scopes and rate limit; a revoked application's
# key is refused even if the key itself was somehow left live.
_KEY_SQL = (
    "SELECT k.id, k.role, k.tenant_id, a.id, ARRAY(SELECT jsonb_array_elements_text(a.scopes)), a.rate_limit_per_minute"
    " FROM public.accounts_apikey k"
    " JOIN public.tenants_tenant t ON t.id = k.tenant_id"
    " LEFT JOIN public.integrations_application a ON a.api_key_id = k.id"
    " WHERE k.key_hash = %s AND k.revoked_at IS NULL AND t.is_active AND a.revoked_at IS NULL"
)
# An OAuth2 access token (django-oauth-toolkit keeps only its SHA-256, `token_checksum`) of a live application
# of an active tenant, unexpired; the same query shape as keys.
_OAUTH_TOKEN_SQL = (
    "SELECT a.id, a.role, a.tenant_id, ARRAY(SELECT jsonb_array_elements_text(a.scopes)), a.rate_limit_per_minute,"
    " o.scope, o.expires"
    " FROM public.oauth2_provider_accesstoken o"
    " JOIN public.integrations_application a ON a.oauth_application_id = o.application_id"
    " JOIN public.tenants_tenant t ON t.id = a.tenant_id"
    " WHERE o.token_checksum = %s AND o.expires > %s AND a.revoked_at IS NULL AND t.is_active"
)
KEY_PREFIX = "nxk_"
OAUTH_TOKEN_PREFIX = "nxo_"
_tenants: dict[int, Tenant] = {}
# The resolved credentials, forgotten (apps/core/cache.py) whenever a credential or a tenant changes:
# key hash -> (principal, tenant) of live keys, read by principal_from_api_key on every request.
key_cache = TTLCache(ttl_s=settings.NEXUS_AUTH_CACHE_S, topics=("credentials", "tenants"))
# (user id, tenant id) -> (username, is_superuser, role, password version) or False, read by current_access on
# every request with a JWT.
member_cache = TTLCache(ttl_s=settings.NEXUS_AUTH_CACHE_S, topics=("credentials", "tenants"))
# OAuth2 access token checksum -> (its expiry, (principal, tenant)) as principal_from_oauth_token resolved it (an
# entry is never used past the expiry).
oauth_token_cache = TTLCache(ttl_s=settings.NEXUS_AUTH_CACHE_S, topics=("credentials", "tenants"))


def hash_key(raw_key: str) -> str:
    """SHA-256 of the whole key; see ApiKey for why a fast hash is right here."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _tenant_by_id(tenant_id: int) -> Tenant:
    """A tenant's id, slug and schema never change, so one load per process is enough."""
    tenant = _tenants.get(tenant_id)
    if tenant is None:
        tenant = _tenants[tenant_id] = Tenant.objects.get(pk=tenant_id)
    return tenant


def _app_scopes(scopes) -> frozenset[str] | None:
    """An application's stored scopes as the principal's: an empty list narrows nothing (None)."""
    return frozenset(scopes) if scopes else None


def principal_from_api_key(raw_key: str) -> tuple[Principal, Tenant]:
    """Resolve an `nxk_` key; a revoked, unknown or malformed key, or a suspended tenant, is one answer.

    The resolved (principal, tenant) is cached as is: both are immutable, so a hit costs a hash and a lookup.
    """
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 128:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    key_hash = hash_key(raw_key)
    resolved = key_cache.get(key_hash)
    if resolved is not None:
        return resolved
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL, [key_hash])
        row = cursor.fetchone()
    if row is None:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    key_id, role, tenant_id, app_id, scopes, rate_limit = row
    tenant = _tenant_by_id(tenant_id)
    if app_id is None:
        principal = Principal(
            kind="api_key", actor=f"apikey:{key_id}", tenant_id=tenant_id, tenant_slug=tenant.slug, role=role, api_key_id=key_id
        )
    else:
        principal = _app_principal(app_id, tenant, role=role, scopes=_app_scopes(scopes), rate_limit=rate_limit, key_id=key_id)
    key_cache.set(key_hash, (principal, tenant))
    return principal, tenant


def _app_principal(
    app_id: str, tenant: Tenant, *, role: str, scopes: frozenset[str] | None, rate_limit: int | None, key_id: str | None = None
) -> Principal:
    """An API application acting in its tenant (by its API key, or by an OAuth2 token when `key_id` is None)."""
    return Principal(
        kind="application",
        actor=f"app:{app_id}",
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        role=role,
        api_key_id=key_id,
        application_id=app_id,
        scopes=scopes,
        rate_limit_per_minute=rate_limit,
    )


def principal_from_oauth_token(raw_token: str) -> tuple[Principal, Tenant]:
    """Resolve an `nxo_` OAuth2 access token (client credentials, apps/integrations/oauth.py) to its application.

    Its scopes are the token's, narrowed by the application's current ones (which may have shrunk since the
    token was issued). Cached like keys, and never used past the token's expiry.
    """
    if not raw_token.startswith(OAUTH_TOKEN_PREFIX) or len(raw_token) > 128:
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
    checksum = hash_key(raw_token)
    cached = oauth_token_cache.get(checksum)
    if cached is not None and cached[0] > time.time():
        return cached[1]
    with connection.cursor() as cursor:
        cursor.execute(_OAUTH_TOKEN_SQL, [checksum, datetime.now(UTC)])
        row = cursor.fetchone()
    if row is None:
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
    app_id, role, tenant_id, app_scopes, rate_limit, token_scope, expires = row
    scopes = frozenset(token_scope.split())
    if app_scopes:
        scopes &= frozenset(app_scopes)
    tenant = _tenant_by_id(tenant_id)
    principal = _app_principal(app_id, tenant, role=role, scopes=scopes, rate_limit=rate_limit)
    oauth_token_cache.set(checksum, (expires.timestamp(), (principal, tenant)))
    return principal, tenant


def principal_for_user(*, username: str, tenant: Tenant) -> Principal:
    """The principal of a user acting in `tenant` under their membership role (CLI `--as`)."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise NotFound(f"user '{username}' does not exist", code="user_not_found")
    membership = Membership.objects.filter(user=user, tenant=tenant).first()
    if membership is None and not user.is_superuser:
        raise NotFound(f"user '{username}' is not a member of tenant '{tenant.slug}'", code="not_a_member")
    return Principal(
        kind="user",
        actor=f"user:{user.username}",
        tenant_id=tenant.pk,
        tenant_slug=tenant.slug,
        role=membership.role if membership else None,
        user_id=user.pk,
        is_platform_admin=user.is_superuser,
    )


def apikey_list(*, principal: Principal, tenant: Tenant) -> list[ApiKey]:
    require(principal, "apikey.read", tenant_id=tenant.pk)
    return list(ApiKey.objects.filter(tenant=tenant).order_by("-created_at"))


# The user (if active), the tenant (if active) and the membership between them, in one query; schema-qualified
# like _KEY_SQL. Runs once per user and tenant per NEXUS_AUTH_CACHE_S in each process.
_MEMBER_SQL = (
    "SELECT u.username, u.is_superuser, m.role, u.password FROM public.auth_user u"
    " JOIN public.tenants_tenant t ON t.id = %s AND t.is_active"
    " LEFT JOIN public.accounts_membership m ON m.user_id = u.id AND m.tenant_id = t.id"
    " WHERE u.id = %s AND u.is_active"
)


def current_access(*, user_id: int, tenant_id: int, password_version: str) -> tuple[str, bool, str]:
    """(username, is_platform_admin, role) as they are now for a token's user and tenant, cached for
    NEXUS_AUTH_CACHE_S like API keys.

    A token outlives what it was issued for: a deactivated user, a removed member, a suspended tenant or a
    changed password (the token's `password_version` no longer matches) loses access here, within the cache's
    time everywhere and at once in the process that made the change.
    """
    row = member_cache.get((user_id, tenant_id))
    if row is None:
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_SQL, [tenant_id, user_id])
            found = cursor.fetchone()
        # Only platform admins act in a tenant without a membership; a refusal is cached too.
        if found is not None and (found[2] is not None or found[1]):
            row = (found[0], found[1], found[2], tokens_password_version(found[3]))
        else:
            row = False
        member_cache.set((user_id, tenant_id), row)
    if row is False or not compare_digest(row[3], password_version):
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
    username, is_platform_admin, role, _ = row
    return username, is_platform_admin, Role.OWNER if is_platform_admin else role


def principal_from_access_token(raw_token: str) -> tuple[Principal, Tenant]:
    """Resolve a login JWT (DESIGN §5) to a user principal in the tenant the token is bound to."""
    token = access_verify(raw_token)
    user_id, tenant_id = int(token["user_id"]), int(token["tenant_id"])
    username, is_platform_admin, role = current_access(
        user_id=user_id, tenant_id=tenant_id, password_version=str(token[PASSWORD_VERSION_CLAIM])
    )
    tenant = _tenant_by_id(tenant_id)
    principal = Principal(
        kind="user",
        actor=f"user:{username}",
        tenant_id=tenant_id,
        tenant_slug=tenant.slug,
        role=role,
        user_id=user_id,
        is_platform_admin=is_platform_admin,
    )
    return principal, tenant


def member_list(*, principal: Principal, tenant: Tenant) -> list[Membership]:
    require(principal, "member.read", tenant_id=tenant.pk)
    return list(Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username"))


def user_list(*, principal: Principal) -> list:
    """Every user with their memberships (platform admins only: users are global)."""
    require_platform_admin(principal, "user.list")
    memberships = Prefetch("memberships", queryset=Membership.objects.select_related("tenant").order_by("tenant__slug"))
    return list(get_user_model().objects.prefetch_related(memberships).order_by("username"))


def principal_from_credential(raw: str) -> tuple[Principal, Tenant]:
    """An `nxk_` API key, an `nxo_` OAuth2 access token or a login JWT → (principal, its tenant), for every door
    (HTTP, MCP, WebSocket).

    A JWT is three dot-separated parts; anything else (keys, garbage) is answered as a key, so a malformed
    credential and an unknown one get the same answer.
    """
    if not raw:
        raise NotAuthenticated("authentication credentials were not provided", code="not_authenticated")
    if raw.startswith(KEY_PREFIX):
        return principal_from_api_key(raw)
    if raw.startswith(OAUTH_TOKEN_PREFIX):
        return principal_from_oauth_token(raw)
    if raw.count(".") == 2:
        return principal_from_access_token(raw)
    return principal_from_api_key(raw)
