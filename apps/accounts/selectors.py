"""Account reads: resolving a credential to a principal, listing keys."""

from django.contrib.auth import get_user_model
from django.db import connection

from apps.accounts.access import require
from apps.accounts.models import ApiKey, Membership
from apps.accounts.services import KEY_PREFIX, hash_key, key_cache
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
