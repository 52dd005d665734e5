"""First start of an installation: the public tenant, the `default` tenant and a platform admin with a key."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from apps.accounts.models import Role
from apps.accounts.services import apikey_create, membership_set, user_create
from apps.core.principal import Principal
from apps.tenants.connection import use_public
from apps.tenants.models import Tenant
from apps.tenants.services import public_tenant_ensure, tenant_create_for_bootstrap

ADMIN_USERNAME = "admin"


def bootstrap(*, default_tenant: str = "default") -> dict | None:
    """Create what a fresh installation needs. Returns first credentials only when it created them."""
    use_public()
    public_tenant_ensure()
    tenant = Tenant.objects.filter(slug=default_tenant).first() or tenant_create_for_bootstrap(
        slug=default_tenant, name="Default", plan=settings.NEXUS_DEFAULT_TENANT_PLAN
    )
    use_public()
    if get_user_model().objects.filter(username=ADMIN_USERNAME).exists():
        return None
    password = secrets.token_urlsafe(18)
    with transaction.atomic():
        admin = user_create(username=ADMIN_USERNAME, password=password, is_platform_admin=True)
        membership_set(user=admin, tenant=tenant, role=Role.OWNER)
        system = Principal(
            kind="system",
            actor="system:bootstrap",
            tenant_id=tenant.pk,
            tenant_slug=tenant.slug,
            role="owner",
            is_platform_admin=True,
        )
        key, raw = apikey_create(principal=system, tenant=tenant, role=Role.OWNER, name="first key (bootstrap)")
    return {"username": ADMIN_USERNAME, "password": password, "tenant": tenant.slug, "api_key": raw, "api_key_id": key.id}
