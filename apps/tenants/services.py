"""Tenant writes: create (cloning the template schema), suspend, resume, delete, and the public tenant of bootstrap.

Administering tenants is for platform admins only, checked here for every channel: every door passes the principal
it authenticated. The one path without a principal says so in its name: `tenant_create_for_bootstrap`, for the
in-process caller that installs the platform (bootstrap, test fixtures), never a channel.
"""

import re

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django_tenants.postgresql_backend.base import _check_schema_name
from django_tenants.utils import schema_exists

from apps.accounts.access import require_platform_admin
from apps.audit.recorder import audit_record
from apps.core.cache import cache_forget
from apps.core.errors import Conflict, ValidationFailed
from apps.core.principal import Principal
from apps.events.access_notices import access_ended
from apps.tenants import cloning
from apps.tenants.connection import use_public
from apps.tenants.models import Domain, Isolation, Tenant
from apps.tenants.selectors import tenant_get

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
PLAN_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
RESERVED_SLUGS = frozenset({"public", "template", "admin", "api", "www"})
QUOTA_MAX = 2_147_483_647
CONCURRENCY_MAX = 10_000
_UNCHANGED: object = object()


def schema_name_for(slug: str) -> str:
    return "t_" + slug.replace("-", "_")


def _validated(
    *,
    slug: str,
    plan: str,
    quota_workflows,
    quota_executions,
    isolation: str,
    max_concurrent_runs=None,
    quota_mail_per_day=None,
) -> dict[str, str]:
    problems: dict[str, str] = {}
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or slug in RESERVED_SLUGS:
        problems["slug"] = "3-40 characters: lower-case letters, digits and '-', starting with a letter"
    if not isinstance(plan, str) or not PLAN_RE.match(plan):
        problems["plan"] = "1-40 characters: lower-case letters, digits, '-' and '_'"
    for name, value in (("quota_workflows", quota_workflows), ("quota_executions", quota_executions)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= QUOTA_MAX):
            problems[name] = "a whole number from 0, or null for unlimited"
    mail = quota_mail_per_day
    if mail is not None and (isinstance(mail, bool) or not isinstance(mail, int) or not 0 <= mail <= QUOTA_MAX):
        problems["quota_mail_per_day"] = "a whole number from 0, or null for the platform's NEXUS_MAIL_PER_TENANT_PER_DAY"
    if isolation not in Isolation.values:
        problems["isolation"] = f"one of {', '.join(Isolation.values)}"
    if max_concurrent_runs is not None and (
        isinstance(max_concurrent_runs, bool)
        or not isinstance(max_concurrent_runs, int)
        or not 1 <= max_concurrent_runs <= CONCURRENCY_MAX
    ):
        problems["max_concurrent_runs"] = f"a whole number from 1 to {CONCURRENCY_MAX}, or null for the platform's default"
    return problems


def tenant_create(*, principal: Principal, slug: str, **fields) -> Tenant:
    """Create a tenant for a platform admin: see `tenant_create_for_bootstrap` for the fields."""
    require_platform_admin(principal, "tenant.create")
    return _create(principal=principal, slug=slug, **fields)


def tenant_create_for_bootstrap(*, slug: str, **fields) -> Tenant:
    """`tenant_create` without an access check: for the installation's first tenant (`nexus up`/setup) and test
    fixtures; the audit row names no caller."""
    return _create(principal=None, slug=slug, **fields)


def _create(
    *,
    principal: Principal | None,
    slug: str,
    name: str = "",
    plan: str = "standard",
    quota_workflows: int | None = None,
    quota_executions: int | None = None,
    isolation: str = Isolation.STRICT,
    max_concurrent_runs: int | None = None,
    quota_mail_per_day: int | None = None,
) -> Tenant:
    """Create a tenant with its domain and schema in one transaction: all of it exists afterwards, or none of it.

    The schema is replayed from the template's dump when there is one for the current migrations (tens of ms),
    else migrated (and the dump is built for next time when this runs outside a transaction)."""
    problems = _validated(
        slug=slug,
        plan=plan,
        quota_workflows=quota_workflows,
        quota_executions=quota_executions,
        isolation=isolation,
        max_concurrent_runs=max_concurrent_runs,
        quota_mail_per_day=quota_mail_per_day,
    )
    if len(name or "") > 200:
        problems["name"] = "at most 200 characters"
    if problems:
        detail = "invalid tenant slug" if set(problems) == {"slug"} else "invalid tenant"
        raise ValidationFailed(detail, fields=problems)
    schema_name = schema_name_for(slug)
    _check_schema_name(schema_name)
    use_public()
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"tenant '{slug}' already exists", code="tenant_exists", fields={"slug": "already exists"})
    if schema_exists(schema_name):
        # A schema without a tenant row: left by hand or by a restore. Never adopt or overwrite it.
        raise Conflict(f"schema '{schema_name}' already exists", code="schema_exists", fields={"slug": "schema already exists"})
    dump = cloning.dump_for_creation()  # before the transaction: building a dump must not run inside one
    try:
        with transaction.atomic():
            tenant = Tenant(
                slug=slug,
                name=name or slug,
                plan=plan,
                quota_workflows=quota_workflows,
                quota_executions=quota_executions,
                isolation=isolation,
                max_concurrent_runs=max_concurrent_runs,
                quota_mail_per_day=quota_mail_per_day,
                schema_name=schema_name,
            )
            tenant.save(verbosity=0)
            Domain.objects.create(domain=f"{slug}.localhost", tenant=tenant, is_primary=True)
            audit_record(
                action="tenant.created",
                tenant_id=tenant.pk,
                principal=principal,
                target=f"tenant:{slug}",
                details={"slug": slug, "plan": plan, "isolation": isolation},
            )
            if dump is not None:
                cloning.schema_clone(schema_name=schema_name, dump=dump)
            else:
                cloning.schema_migrate(tenant)
    except IntegrityError:
        # Lost a race with a concurrent creation of the same slug; the transaction left nothing behind.
        raise Conflict(f"tenant '{slug}' already exists", code="tenant_exists", fields={"slug": "already exists"}) from None
    finally:
        use_public()
    return tenant


def tenant_update(
    *,
    principal: Principal,
    slug: str,
    name=_UNCHANGED,
    plan=_UNCHANGED,
    quota_workflows=_UNCHANGED,
    quota_executions=_UNCHANGED,
    isolation=_UNCHANGED,
    max_concurrent_runs=_UNCHANGED,
    quota_mail_per_day=_UNCHANGED,
) -> Tenant:
    """Change what is given of a tenant's name, plan, quotas and isolation (None: unlimited, or the default
    concurrency). Lowering a quota below what is used removes nothing; it refuses what comes next. Takes effect
    at once in this process and within NEXUS_TENANT_LIMITS_CACHE_S in the others; a tenant leaving strict
    isolation keeps being served from its own queue until that queue is empty."""
    require_platform_admin(principal, "tenant.update")
    given = {
        "name": name,
        "plan": plan,
        "quota_workflows": quota_workflows,
        "quota_executions": quota_executions,
        "isolation": isolation,
        "max_concurrent_runs": max_concurrent_runs,
        "quota_mail_per_day": quota_mail_per_day,
    }
    changes = {field: value for field, value in given.items() if value is not _UNCHANGED}
    problems = _validated(
        slug=slug,
        plan=changes.get("plan", "standard"),
        quota_workflows=changes.get("quota_workflows"),
        quota_executions=changes.get("quota_executions"),
        isolation=changes.get("isolation", Isolation.STRICT),
        max_concurrent_runs=changes.get("max_concurrent_runs"),
        quota_mail_per_day=changes.get("quota_mail_per_day"),
    )
    problems.pop("slug", None)  # an existing tenant's slug is not up for review
    if "name" in changes and (not isinstance(name, str) or len(name) > 200):
        problems["name"] = "at most 200 characters"
    if problems:
        raise ValidationFailed("invalid tenant", fields=problems)
    use_public()
    with transaction.atomic():
        tenant = tenant_get(slug=slug, for_update=True)
        if "name" in changes:
            changes["name"] = changes["name"] or tenant.slug
        for field, value in changes.items():
            setattr(tenant, field, value)
        if changes:
            tenant.save(update_fields=list(changes))
        audit_record(
            action="tenant.updated",
            tenant_id=tenant.pk,
            principal=principal,
            target=f"tenant:{slug}",
            details={"changes": changes},
        )
        cache_forget("tenants")  # now, and again once committed
    return tenant


def _set_active(*, principal: Principal, slug: str, is_active: bool) -> Tenant:
    require_platform_admin(principal, "tenant.resume" if is_active else "tenant.suspend")
    use_public()
    with transaction.atomic():
        tenant = tenant_get(slug=slug, for_update=True)
        changed = tenant.is_active != is_active
        if changed:
            tenant.is_active = is_active
            tenant.save(update_fields=["is_active"])
            if not is_active:  # its WebSockets close (apps/events/access_notices.py)
                access_ended(reason="tenant_suspended", tenant_id=tenant.pk)
        audit_record(
            action="tenant.resumed" if is_active else "tenant.suspended",
            tenant_id=tenant.pk,
            principal=principal,
            target=f"tenant:{slug}",
            details={"changed": changed},
        )
        cache_forget("tenants")  # now, and again once committed
    return tenant


def tenant_suspend(*, principal: Principal, slug: str) -> Tenant:
    """Stop the tenant's credentials from working (the key lookup only matches active tenants); keep its data."""
    return _set_active(principal=principal, slug=slug, is_active=False)


def tenant_resume(*, principal: Principal, slug: str) -> Tenant:
    return _set_active(principal=principal, slug=slug, is_active=True)


def tenant_delete(*, principal: Principal, slug: str, confirm: str) -> None:
    """Drop the tenant's schema and delete its row with everything that references it (domains, memberships,
    API keys), in one transaction. `confirm` must repeat the slug: this cannot be undone except from a backup."""
    require_platform_admin(principal, "tenant.delete")
    use_public()
    tenant = tenant_get(slug=slug)
    if confirm != slug:
        raise ValidationFailed(
            f"deleting tenant '{slug}' drops all its data: confirm with its slug",
            code="confirmation_required",
            fields={"confirm": f"must be '{slug}'"},
        )
    with transaction.atomic():
        tenant = tenant_get(slug=slug, for_update=True)
        with connection.cursor() as cursor:
            # Deferred foreign-key checks still pending in this transaction would forbid dropping their tables.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f'DROP SCHEMA IF EXISTS "{tenant.schema_name}" CASCADE')
        # A queryset delete cascades through Django's collector (domains, memberships, keys) and, unlike
        # Tenant.delete(), leaves the schema to the statement above.
        Tenant.objects.filter(pk=tenant.pk).delete()
        access_ended(reason="tenant_deleted", tenant_id=tenant.pk)
        audit_record(
            action="tenant.deleted", tenant_id=tenant.pk, principal=principal, target=f"tenant:{slug}", details={"slug": slug}
        )
        cache_forget("tenants")  # now, and again once committed


def public_tenant_ensure() -> Tenant:
    tenant = Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).first()
    if tenant is None:
        tenant = Tenant(slug="public", name="Platform", schema_name=settings.PUBLIC_SCHEMA_NAME)
        tenant.save(verbosity=0)
    return tenant
