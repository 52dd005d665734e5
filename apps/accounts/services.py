"""Account writes: users, memberships, API keys, and logins (JWT pairs, LDAP group sync)."""

import logging
import secrets
from collections.abc import Iterable
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from apps.accounts.access import require, require_platform_admin, require_role_at_most
from apps.accounts.auth_config import dn_key
from apps.accounts.models import ApiKey, LoginOutcome, Membership, Role
from apps.accounts.roles import outranks
from apps.accounts.selectors import KEY_PREFIX, current_access, hash_key
from apps.accounts.tokens import (
    PASSWORD_VERSION_CLAIM,
    TokenPair,
    refresh_tokens_revoke,
    refresh_verify,
    token_pair_issue,
    token_pair_rotate,
)
from apps.audit.context import current_context
from apps.audit.models import ActorType
from apps.audit.recorder import audit_record, json_safe, public_tenant_id
from apps.core.cache import cache_forget
from apps.core.errors import ApplicationError, Conflict, NotAuthenticated, NotFound, PermissionDenied, ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.events.access_notices import access_ended
from apps.ratelimit.limiter import check as rate_limit_check
from apps.ratelimit.limiter import limiter
from apps.tenants.models import Tenant

logger = logging.getLogger("nexus.auth")


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise ValidationFailed("invalid role", fields={"role": f"one of {', '.join(Role.values)}"})


def apikey_create(*, principal: Principal, tenant: Tenant, role: str = Role.DEVELOPER, name: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored and never shown again."""
    require(principal, "apikey.create", tenant_id=tenant.pk)
    _check_role(role)
    require_role_at_most(principal, role, action="apikey.create", doing="create an API key with role")
    with transaction.atomic():
        key, raw = apikey_issue(tenant=tenant, role=role, name=name, created_by=principal.actor)
        audit_record(
            action="apikey.created",
            tenant_id=tenant.pk,
            principal=principal,
            target=key.id,
            details={"prefix": key.prefix, "role": role, "name": key.name},
        )
    return key, raw


def apikey_issue(*, tenant: Tenant, role: str, name: str, created_by: str) -> tuple[ApiKey, str]:
    """Store a new key and return it with its raw secret. No access check, no audit row: the caller's service
    (apikey_create, an API application's registration or rotation) does both, in its transaction."""
    prefix = secrets.token_hex(4)
    raw = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        id=new_id("key"),
        tenant=tenant,
        name=name[:200],
        prefix=prefix,
        key_hash=hash_key(raw),
        role=role,
        created_by=created_by,
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
        already = key.revoked_at is not None
        if not already:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            access_ended(reason="apikey_revoked", tenant_id=tenant.pk, api_key_id=key.id)  # its WebSockets close
        audit_record(
            action="apikey.revoked",
            tenant_id=tenant.pk,
            principal=principal,
            target=key.id,
            details={"prefix": key.prefix, "already_revoked": already},
        )
        cache_forget("credentials")
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
    _forget_memberships()
    return membership


def membership_remove(*, user, tenant: Tenant) -> bool:
    deleted, _ = Membership.objects.filter(user=user, tenant=tenant).delete()
    _forget_memberships()
    if deleted:  # the user's WebSockets in the tenant close (apps/events/access_notices.py)
        access_ended(reason="member_removed", tenant_id=tenant.pk, user_id=user.pk)
    return bool(deleted)


def _forget_memberships() -> None:
    cache_forget("credentials")  # now, and again after commit


def _user_get(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise NotFound(f"user '{username}' does not exist", code="user_not_found")
    return user


def user_register(*, principal: Principal, username: str, password: str, email: str = "", is_platform_admin: bool = False):
    """A platform admin adds a local user (one login across tenants); memberships are added separately."""
    require_platform_admin(principal, "user.create")
    User = get_user_model()
    fields: dict[str, str] = {}
    try:
        User.username_validator(username)
    except DjangoValidationError as error:
        fields["username"] = "; ".join(error.messages)
    if email:
        try:
            validate_email(email)
        except DjangoValidationError as error:
            fields["email"] = "; ".join(error.messages)
    try:
        validate_password(password, user=User(username=username, email=email))
    except DjangoValidationError as error:
        fields["password"] = "; ".join(error.messages)
    if fields:
        raise ValidationFailed("invalid user", fields=fields)
    with transaction.atomic():
        user = user_create(username=username, password=password, email=email, is_platform_admin=is_platform_admin)
        audit_record(
            action="user.created",
            tenant_id=public_tenant_id(),  # users are global
            principal=principal,
            target=f"user:{user.username}",
            details={"platform_admin": user.is_superuser},
        )
    return user


def _check_may_manage(principal: Principal, *, current_role: str | None, new_role: str | None) -> None:
    """Nobody but a platform admin grants, changes or removes a role above their own."""
    require_role_at_most(principal, new_role, action="member.write", doing="give a member role")
    require_role_at_most(principal, current_role, action="member.write", doing="manage a member with role")


def _keep_an_owner(*, tenant: Tenant, leaving: Membership | None) -> None:
    if (
        leaving is not None
        and leaving.role == Role.OWNER
        and not Membership.objects.filter(tenant=tenant, role=Role.OWNER).exclude(pk=leaving.pk).exists()
    ):
        raise Conflict(f"tenant '{tenant.slug}' must keep at least one owner", code="last_owner")


def member_add(*, principal: Principal, tenant: Tenant, username: str, role: str) -> Membership:
    """Give `username` `role` in `tenant`, or change the role they have there."""
    require(principal, "member.write", tenant_id=tenant.pk)
    _check_role(role)
    user = _user_get(username)
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
        _check_may_manage(principal, current_role=current.role if current else None, new_role=role)
        if role != Role.OWNER:
            _keep_an_owner(tenant=tenant, leaving=current)
        membership = membership_set(user=user, tenant=tenant, role=role)
        audit_record(
            action="member.updated" if current else "member.added",
            tenant_id=tenant.pk,
            principal=principal,
            target=f"user:{user.username}",
            details={"role": role, "previous_role": current.role if current else None},
        )
        return membership


def member_remove(*, principal: Principal, tenant: Tenant, username: str) -> Membership:
    require(principal, "member.write", tenant_id=tenant.pk)
    user = _user_get(username)
    with transaction.atomic():
        current = Membership.objects.select_for_update().filter(user=user, tenant=tenant).first()
        if current is None:
            raise NotFound(f"user '{username}' is not a member of tenant '{tenant.slug}'", code="not_a_member")
        _check_may_manage(principal, current_role=current.role, new_role=None)
        _keep_an_owner(tenant=tenant, leaving=current)
        membership_remove(user=user, tenant=tenant)
        revoked = refresh_tokens_revoke(user_id=user.pk, tenant_id=tenant.pk)  # rejoining must not revive them
        audit_record(
            action="member.removed",
            tenant_id=tenant.pk,
            principal=principal,
            target=f"user:{user.username}",
            details={"previous_role": current.role, "refresh_tokens_revoked": revoked},
        )
    return current


def memberships_sync_from_groups(*, user, group_dns: Iterable[str], role_map: dict[str, dict[str, str]]) -> dict[str, str | None]:
    """Set the user's role in every tenant `role_map` names to the highest role their groups grant there,
    removing the membership when no group grants one. Tenants the map does not name are left alone, so
    memberships given by hand elsewhere survive. `role_map` is keyed by auth_config.dn_key.

    Returns {tenant slug: role or None}.
    """
    granted: dict[str, str | None] = {grant["tenant"]: None for grant in role_map.values()}
    for group_dn in group_dns:
        grant = role_map.get(dn_key(group_dn))
        if grant is not None and outranks(grant["role"], granted[grant["tenant"]]):
            granted[grant["tenant"]] = grant["role"]
    tenants = {tenant.slug: tenant for tenant in Tenant.objects.filter(slug__in=list(granted))}
    for slug in sorted(set(granted) - set(tenants)):
        logger.warning("NEXUS_LDAP_ROLE_MAP names tenant '%s', which does not exist", slug)
    with transaction.atomic():
        current = {m.tenant_id: m for m in Membership.objects.select_for_update().filter(user=user, tenant__in=tenants.values())}
        for slug, tenant in tenants.items():
            role, membership = granted[slug], current.get(tenant.pk)
            before = membership.role if membership is not None else None
            if role is None and membership is not None:
                membership.delete()
                refresh_tokens_revoke(user_id=user.pk, tenant_id=tenant.pk)
            elif role is not None and (membership is None or membership.role != role):
                Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
            else:
                continue
            # A role given or taken by the directory is a change of access like any other: audited.
            audit_record(
                action="member.synced",
                tenant_id=tenant.pk,
                actor="ldap",
                actor_type="system",
                target=f"user:{user.username}",
                details={"from": before, "to": role, "source": "ldap_groups"},
            )
        _forget_memberships()
    return {slug: granted[slug] for slug in tenants}


def login_attempted(
    *, username: str, tenant_slug: str | None, outcome: str, ip: str | None, reason: str = "", channel: str = "api"
) -> None:
    """Every login, successful or not, on every channel, passes here once: the hook for the audit log.

    It logs, and records `auth.login_succeeded` or `auth.login_failed` durably (a failed login's caller rolls
    back), under the tenant logged in to (or named, when it exists; else the public tenant). The client ip of
    the audit context (X-Forwarded-For from our proxy) wins over `ip`. Never give it the password.

    A failed login proves nothing about who sent it, and anyone can name any tenant: its row is unauthenticated
    (actor `anonymous`; what the client typed is in `claimed_username` and `claimed_tenant`), and at most
    NEXUS_LOGIN_AUDIT_PER_MINUTE such rows go into one tenant's log a minute, so nobody can flood a tenant's audit
    log from outside. Past that, one `auth.login_failures_suppressed` row marks the minute and each further
    failure is only counted, in nexus_rate_limited_total{scope="login_audit"}.
    """
    if outcome == LoginOutcome.SUCCESS:
        logger.info("login succeeded: user=%r tenant=%s ip=%s channel=%s", username, tenant_slug, ip, channel)
    else:
        logger.warning("login failed: user=%r tenant=%s ip=%s channel=%s reason=%s", username, tenant_slug, ip, channel, reason)
    succeeded = outcome == LoginOutcome.SUCCESS
    named = Tenant.objects.filter(slug=tenant_slug).values_list("pk", flat=True).first() if tenant_slug else None
    client_ip = current_context().ip or ip
    if succeeded:
        audit_record(
            action="auth.login_succeeded",
            tenant_id=named,
            actor=f"user:{username}",
            actor_type="user",
            target=f"user:{username}",
            outcome="success",
            details=json_safe({"tenant": tenant_slug}),
            channel=channel,
            ip=client_ip,
            durable=True,
        )
        return
    common: dict[str, Any] = {
        "tenant_id": named,
        "actor": "anonymous",
        "actor_type": ActorType.ANONYMOUS,
        "channel": channel,
        "ip": client_ip,
    }
    admitted = _failed_login_row_admitted(tenant_id=named, tenant_slug=tenant_slug if named and tenant_slug else "")
    if admitted is True:
        audit_record(
            action="auth.login_failed",
            outcome="denied",
            details=json_safe({"claimed_username": username, "claimed_tenant": tenant_slug, "reason": reason}),
            durable=True,
            **common,
        )
    elif admitted == "first_suppressed":
        audit_record(
            action="auth.login_failures_suppressed",
            outcome="denied",
            details={
                "limit_per_minute": settings.NEXUS_LOGIN_AUDIT_PER_MINUTE,
                "counted_in": 'nexus_rate_limited_total{scope="login_audit"}',
            },
            durable=True,
            **common,
        )


def _failed_login_row_admitted(*, tenant_id: int | None, tenant_slug: str) -> bool | str:
    """True while the tenant's failed-login rows are under NEXUS_LOGIN_AUDIT_PER_MINUTE (or Redis cannot say:
    the row is then written, the login door itself failing closed); else "first_suppressed" for the first
    failure over it in a minute, False for the rest."""
    key = f"audit:login_failed:{tenant_id or 'public'}"
    decision = rate_limit_check(key, settings.NEXUS_LOGIN_AUDIT_PER_MINUTE, 60.0, scope="login_audit", tenant=tenant_slug)
    if decision is None or decision.allowed:
        return True
    try:
        first = limiter().client.set(f"{limiter().prefix}{key}:suppressed", 1, nx=True, ex=60)
    except redis.RedisError:
        first = False
    return "first_suppressed" if first else False


def _login_tenant(*, user, tenant_slug: str | None) -> tuple[Tenant, str]:
    """The tenant a login is for and the role there. Platform admins may pick any tenant, as owners."""
    memberships = list(
        Membership.objects.filter(user=user, tenant__is_active=True)
        .exclude(tenant__schema_name=settings.PUBLIC_SCHEMA_NAME)
        .select_related("tenant")
        .order_by("tenant__slug")
    )
    if tenant_slug:
        tenant = next((m.tenant for m in memberships if m.tenant.slug == tenant_slug), None)
        if tenant is None and user.is_superuser:
            tenant = (
                Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).filter(slug=tenant_slug, is_active=True).first()
            )
        if tenant is None:
            # One answer for an unknown tenant and another's tenant: no probing for tenant names.
            raise PermissionDenied(f"not a member of tenant '{tenant_slug}'", code="not_a_member")
    elif len(memberships) == 1:
        tenant = memberships[0].tenant
    elif memberships or user.is_superuser:
        choices = ", ".join(m.tenant.slug for m in memberships) or "any tenant (platform admin)"
        raise ValidationFailed(
            "name the tenant to log in to", code="tenant_required", fields={"tenant": f"required: one of {choices}"}
        )
    else:
        raise PermissionDenied("not a member of any tenant", code="not_a_member")
    if user.is_superuser:
        return tenant, Role.OWNER
    return tenant, next(m.role for m in memberships if m.tenant_id == tenant.pk)


def user_login(
    *, username: str, password: str, tenant_slug: str | None = None, ip: str | None = None, channel: str = "api"
) -> TokenPair:
    """Check a password with Django's backends (local users, and LDAP when configured) and issue a JWT
    pair for one tenant. A wrong password, an unknown user and an inactive one get the same answer."""
    try:
        user = authenticate(None, username=username, password=password)
        if user is None or not user.is_active:
            raise NotAuthenticated("invalid username or password", code="invalid_credentials")
        tenant, role = _login_tenant(user=user, tenant_slug=tenant_slug or None)
        pair = token_pair_issue(user=user, tenant=tenant, role=role)
    except ApplicationError as error:
        login_attempted(
            username=username, tenant_slug=tenant_slug, outcome=LoginOutcome.FAILURE, ip=ip, reason=error.code, channel=channel
        )
        raise
    login_attempted(
        username=user.username, tenant_slug=tenant.slug, outcome=LoginOutcome.SUCCESS, ip=ip, reason="", channel=channel
    )
    return pair


def token_refresh(*, refresh: str) -> TokenPair:
    """Spend a refresh token for the next pair, if the user may still act in its tenant (current role) and has
    not changed their password since. A used or revoked refresh token is one 401 answer with a forged one."""
    token = refresh_verify(refresh)  # signature, expiry, type, and not blacklisted
    _, _, role = current_access(
        user_id=int(token["user_id"]), tenant_id=int(token["tenant_id"]), password_version=str(token[PASSWORD_VERSION_CLAIM])
    )
    return token_pair_rotate(token, role=role)


def user_password_set(*, principal: Principal, username: str, password: str):
    """A platform admin sets a local user's password; every refresh token of the user is revoked, and every
    access token stops working (its password version no longer matches; apps/accounts/tokens.py)."""
    require_platform_admin(principal, "user.update")
    user = _user_get(username)
    if not user.has_usable_password():
        raise ValidationFailed(
            f"user '{username}' has no local password (a directory user): change it in the directory",
            code="no_local_password",
            fields={"username": "a directory (LDAP) user"},
        )
    try:
        validate_password(password, user=user)
    except DjangoValidationError as error:
        raise ValidationFailed("invalid password", fields={"password": "; ".join(error.messages)}) from None
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        revoked = refresh_tokens_revoke(user_id=user.pk)
        audit_record(
            action="user.password_changed",
            tenant_id=public_tenant_id(),  # users are global
            principal=principal,
            target=f"user:{user.username}",
            details={"refresh_tokens_revoked": revoked},
        )
        _forget_memberships()
    return user
