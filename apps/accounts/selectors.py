"""Account reads: resolving a credential (API key, JWT) to a principal, listing keys, users and members."""

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Prefetch

from apps.accounts.access import require, require_platform_admin
from apps.accounts.models import ApiKey, Membership, Role
from apps.accounts.services import KEY_PREFIX, hash_key, key_cache, member_cache
from apps.accounts.tokens import access_issue_from_refresh, access_lifetime_s, access_verify, refresh_verify
from apps.core.errors import NotAuthenticated, NotFound
from apps.core.principal import Principal
from apps.tenants.models import Tenant

# Runs on every request with a key: one indexed query, schema-qualified so it needs no search_path change,
# written in SQL because the ORM's query building cost more than the query (bench/RESULTS.md).
_KEY_SQL = (
    "SELECT k.id, k.role, k.tenant_id FROM public.accounts_apikey k"
    " JOIN public.tenants_tenant t ON t.id = k.tenant_id"
    " WHERE k.key_hash = %s AND k.revoked_at IS NULL AND t.is_active"
)
_tenants: dict[int, Tenant] = {}


def _tenant_by_id(tenant_id: int) -> Tenant:
    """A tenant's id, slug and schema never change, so one load per process is enough."""
    tenant = _tenants.get(tenant_id)
    if tenant is None:
        tenant = _tenants[tenant_id] = Tenant.objects.get(pk=tenant_id)
    return tenant


def principal_from_api_key(raw_key: str) -> tuple[Principal, Tenant]:
    """Resolve an `nxk_` key; a revoked, unknown or malformed key, or a suspended tenant, is one answer."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 128:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    key_hash = hash_key(raw_key)
    row = key_cache.get(key_hash)
    if row is None:
        with connection.cursor() as cursor:
            cursor.execute(_KEY_SQL, [key_hash])
            row = cursor.fetchone()
        if row is None:
            raise NotAuthenticated("invalid API key", code="invalid_credentials")
        key_cache.set(key_hash, row)
    key_id, role, tenant_id = row
    tenant = _tenant_by_id(tenant_id)
    principal = Principal(
        kind="api_key",
        actor=f"apikey:{key_id}",
        tenant_id=tenant_id,
        tenant_slug=tenant.slug,
        role=role,
        api_key_id=key_id,
    )
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
    "SELECT u.username, u.is_superuser, m.role FROM public.auth_user u"
    " JOIN public.tenants_tenant t ON t.id = %s AND t.is_active"
    " LEFT JOIN public.accounts_membership m ON m.user_id = u.id AND m.tenant_id = t.id"
    " WHERE u.id = %s AND u.is_active"
)


def _current_access(*, user_id: int, tenant_id: int) -> tuple[str, bool, str]:
    """(username, is_platform_admin, role) as they are now, cached for NEXUS_AUTH_CACHE_S like API keys.

    A token outlives what it was issued for: a deactivated user, a removed member or a suspended tenant
    loses access here, within the cache's time everywhere and at once in the process that made the change.
    """
    row = member_cache.get((user_id, tenant_id))
    if row is None:
        with connection.cursor() as cursor:
            cursor.execute(_MEMBER_SQL, [tenant_id, user_id])
            found = cursor.fetchone()
        # Only platform admins act in a tenant without a membership; a refusal is cached too.
        row = found if found is not None and (found[2] is not None or found[1]) else False
        member_cache.set((user_id, tenant_id), row)
    if row is False:
        raise NotAuthenticated("invalid or expired token", code="invalid_credentials")
    username, is_platform_admin, role = row
    return username, is_platform_admin, Role.OWNER if is_platform_admin else role


def principal_from_access_token(raw_token: str) -> tuple[Principal, Tenant]:
    """Resolve a login JWT (DESIGN §5) to a user principal in the tenant the token is bound to."""
    token = access_verify(raw_token)
    user_id, tenant_id = int(token["user_id"]), int(token["tenant_id"])
    username, is_platform_admin, role = _current_access(user_id=user_id, tenant_id=tenant_id)
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


def token_refresh(*, refresh: str) -> dict:
    """A new access token from a refresh token, if the user may still act in its tenant (current role)."""
    token = refresh_verify(refresh)
    _, _, role = _current_access(user_id=int(token["user_id"]), tenant_id=int(token["tenant_id"]))
    return {
        "access": access_issue_from_refresh(token, role=role),
        "tenant": token["tenant"],
        "role": role,
        "expires_in": access_lifetime_s(),
    }


def member_list(*, principal: Principal, tenant: Tenant) -> list[Membership]:
    require(principal, "member.read", tenant_id=tenant.pk)
    return list(Membership.objects.filter(tenant=tenant).select_related("user").order_by("user__username"))


def user_list(*, principal: Principal) -> list:
    """Every user with their memberships (platform admins only: users are global)."""
    require_platform_admin(principal, "user.list")
    memberships = Prefetch("memberships", queryset=Membership.objects.select_related("tenant").order_by("tenant__slug"))
    return list(get_user_model().objects.prefetch_related(memberships).order_by("username"))


def credential_from_headers(*, authorization: str, api_key: str) -> str:
    """The raw credential of a request: `X-API-Key` wins over `Authorization: Bearer …` (every door)."""
    if api_key.strip():
        return api_key.strip()
    if authorization[:7].lower() == "bearer ":
        return authorization[7:].strip()
    return ""


def principal_from_credential(raw: str) -> tuple[Principal, Tenant]:
    """An `nxk_` API key or a login JWT → (principal, its tenant), for every door (HTTP, MCP, WebSocket).

    A JWT is three dot-separated parts; anything else (keys, garbage) is answered as a key, so a malformed
    credential and an unknown one get the same answer.
    """
    if not raw:
        raise NotAuthenticated("authentication credentials were not provided", code="not_authenticated")
    if not raw.startswith(KEY_PREFIX) and raw.count(".") == 2:
        return principal_from_access_token(raw)
    return principal_from_api_key(raw)
