"""Tenant reads, with a small per-process cache for the per-request lookups."""

import time

from django.conf import settings

from apps.core.errors import NotFound
from apps.tenants.models import Domain, Tenant

_CACHE_TTL_S = 5.0
_by_host: dict[str, tuple[float, Tenant | None]] = {}


def tenant_get(*, slug: str) -> Tenant:
    try:
        return Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).get(slug=slug)
    except Tenant.DoesNotExist:
        raise NotFound(f"tenant '{slug}' does not exist", code="tenant_not_found") from None


def tenant_list() -> list[Tenant]:
    return list(Tenant.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).order_by("slug"))


def tenant_for_host(*, host: str) -> Tenant | None:
    """The tenant a domain routes to, cached for a few seconds: this runs on every unauthenticated request."""
    now = time.monotonic()
    hit = _by_host.get(host)
    if hit and hit[0] > now:
        return hit[1]
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    tenant = domain.tenant if domain else None
    if len(_by_host) > 10_000:
        _by_host.clear()
    _by_host[host] = (now + _CACHE_TTL_S, tenant)
    return tenant
