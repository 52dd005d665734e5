"""Tenant writes: creating a tenant (and its schema) and the first bootstrap of an installation."""

import re

from django.conf import settings
from django.db import connection, transaction

from apps.core.errors import Conflict, ValidationFailed
from apps.tenants.models import Domain, Tenant

SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset({"public", "template", "admin", "api", "www"})


def schema_name_for(slug: str) -> str:
    return "t_" + slug.replace("-", "_")


def tenant_create(*, slug: str, name: str = "", plan: str = "standard") -> Tenant:
    if not SLUG_RE.match(slug or "") or slug in RESERVED_SLUGS:
        raise ValidationFailed(
            "invalid tenant slug",
            fields={"slug": "3-40 characters: lower-case letters, digits and '-', starting with a letter"},
        )
    if Tenant.objects.filter(slug=slug).exists():
        raise Conflict(f"tenant '{slug}' already exists", code="tenant_exists", fields={"slug": "already exists"})
    connection.set_schema_to_public()
    with transaction.atomic():
        tenant = Tenant(slug=slug, name=name or slug, plan=plan, schema_name=schema_name_for(slug))
        tenant.save(verbosity=0)
        Domain.objects.create(domain=f"{slug}.localhost", tenant=tenant, is_primary=True)
    return tenant


def public_tenant_ensure() -> Tenant:
    tenant = Tenant.objects.filter(schema_name=settings.PUBLIC_SCHEMA_NAME).first()
    if tenant is None:
        tenant = Tenant(slug="public", name="Platform", schema_name=settings.PUBLIC_SCHEMA_NAME)
        tenant.save(verbosity=0)
    return tenant
