"""Account reads: resolving a credential to a principal, listing keys."""

from django.contrib.auth import get_user_model

from apps.accounts.access import require
from apps.accounts.models import ApiKey, Membership
from apps.accounts.services import KEY_PREFIX, hash_key
from apps.core.errors import NotAuthenticated, NotFound
from apps.core.principal import Principal
from apps.tenants.models import Tenant


def principal_from_api_key(raw_key: str) -> tuple[Principal, Tenant]:
    """Resolve an `nxk_` key in one indexed query; a revoked, unknown or malformed key is one answer."""
    if not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 128:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    key = (
        ApiKey.objects.select_related("tenant")
        .filter(key_hash=hash_key(raw_key), revoked_at__isnull=True, tenant__is_active=True)
        .first()
    )
    if key is None:
        raise NotAuthenticated("invalid API key", code="invalid_credentials")
    principal = Principal(
        kind="api_key",
        actor=f"apikey:{key.id}",
        tenant_id=key.tenant_id,
        tenant_slug=key.tenant.slug,
        role=key.role,
        api_key_id=key.id,
    )
    return principal, key.tenant


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
