"""Account writes: users, memberships and API keys."""

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from apps.accounts.access import require
from apps.accounts.models import ApiKey, Membership, Role
from apps.core.cache import TTLCache
from apps.core.errors import NotFound, ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.tenants.models import Tenant

KEY_PREFIX = "nxk_"
# key hash -> (key id, role, tenant id) of live keys, read by principal_from_api_key on every request.
key_cache = TTLCache(ttl_s=settings.NEXUS_AUTH_CACHE_S)


def hash_key(raw_key: str) -> str:
    """SHA-256 of the whole key; see ApiKey for why a fast hash is right here."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed("invalid role", fields={"role": f"one of {', '.join(Role.values)}"})


def apikey_create(*, principal: Principal, tenant: Tenant, role: str = Role.DEVELOPER, name: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored and never shown again."""
    require(principal, "apikey.create", tenant_id=tenant.pk)
    _check_role(role)
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        id=new_id("key"),
        tenant=tenant,
        name=name[:200],
        prefix=prefix,
        key_hash=hash_key(raw),
        role=role,
        created_by=principal.actor,
    )
    return key, raw


def apikey_revoke(*, principal: Principal, tenant: Tenant, key_id: str) -> ApiKey:
    require(principal, "apikey.revoke", tenant_id=tenant.pk)
    with transaction.atomic():
        key = ApiKey.objects.select_for_update().filter(tenant=tenant).filter(id=key_id).first()
        if key is None:
            key = ApiKey.objects.select_for_update().filter(tenant=tenant, prefix=key_id).first()
        if key is None:
            raise NotFound(f"API key '{key_id}' does not exist", code="apikey_not_found")
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
    key_cache.clear()
    return key


def user_create(*, username: str, password: str, email: str = "", is_platform_admin: bool = False):
    User = get_user_model()
    if not username:
        raise ValidationFailed("username is required", fields={"username": "required"})
    if User.objects.filter(username=username).exists():
        raise ValidationFailed("user already exists", code="user_exists", fields={"username": "already exists"})
    return User.objects.create_user(
        username=username,
        password=password,
        email=email,
        is_staff=is_platform_admin,
        is_superuser=is_platform_admin,
    )


def membership_set(*, user, tenant: Tenant, role: str) -> Membership:
    _check_role(role)
    membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership
