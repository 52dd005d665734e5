"""Tenant reads, with a small per-process cache for the per-request lookups.

Every listing here leaves out the public schema's row and the template that new schemas are cloned from.
"""

from apps.accounts.access import require_platform_admin
from apps.core.cache import TTLCache
from apps.core.errors import NotFound
from apps.core.principal import Principal
from apps.tenants.models import Domain, Tenant

_MISSING = object()
_by_host = TTLCache(ttl_s=5.0, topics=("tenants",))


def tenant_get(*, slug: str, for_update: bool = False) -> Tenant:
    queryset = Tenant.objects.real()
    if for_update:
        queryset = queryset.select_for_update()
    try:
        return queryset.get(slug=slug)
    except Tenant.DoesNotExist:
        raise NotFound(f"tenant '{slug}' does not exist", code="tenant_not_found") from None


def tenant_show(*, principal: Principal, slug: str) -> Tenant:
    """One tenant, for a platform admin or a principal of that tenant. For anyone else the tenant does not
    exist: the same answer as a slug nobody uses."""
    tenant = tenant_get(slug=slug)
    if not principal.is_platform_admin and principal.tenant_id != tenant.pk:
        raise NotFound(f"tenant '{slug}' does not exist", code="tenant_not_found")
    return tenant


def tenant_list_all_tenants(*, principal: Principal) -> list[Tenant]:
    require_platform_admin(principal, "tenant.list")
    return list(Tenant.objects.real().order_by("slug"))


def tenant_for_host(*, host: str) -> Tenant | None:
    """The tenant a domain routes to, cached for a few seconds: this runs on every unauthenticated request."""
    hit = _by_host.get(host, _MISSING)
    if hit is not _MISSING:
        return hit
    domain = Domain.objects.select_related("tenant").filter(domain=host).first()
    tenant = domain.tenant if domain else None
    _by_host.set(host, tenant)
    return tenant
