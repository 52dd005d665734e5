"""A tenant's quotas, isolation and plan as the request and run paths need them, cached per process for a few
seconds.

The run hot path must not pay for quotas it does not have: `tenant_limits` is a dict lookup and a clock read
(a fraction of a microsecond), and one indexed query per tenant and process every NEXUS_TENANT_LIMITS_CACHE_S.
A change made through `tenant_update` applies at once in the process that made it and within that time in
the others.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection

from apps.core.cache import TTLCache
from apps.core.errors import NotFound
from apps.tenants.models import Tenant

_COLUMNS = "slug, schema_name, quota_workflows, quota_executions, isolation, max_concurrent_runs, plan, quota_mail_per_day"
_SQL = f"SELECT {_COLUMNS} FROM public.{Tenant._meta.db_table} WHERE id = %s"  # noqa: S608 (model metadata)
_cache = TTLCache(ttl_s=lambda: settings.NEXUS_TENANT_LIMITS_CACHE_S, max_entries=100_000, topics=("tenants",))


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """The fields of a Tenant that quotas, isolation and rate limits read, under the same names (a Tenant does as well)."""

    id: int
    slug: str
    schema_name: str
    quota_workflows: int | None
    quota_executions: int | None
    isolation: str
    max_concurrent_runs: int | None
    plan: str
    quota_mail_per_day: int | None


def tenant_limits(tenant_id: int) -> TenantLimits:
    hit = _cache.get(tenant_id)
    if hit is not None:
        return hit
    with connection.cursor() as cursor:
        cursor.execute(_SQL, [tenant_id])
        row = cursor.fetchone()
    if row is None:
        raise NotFound("tenant does not exist", code="tenant_not_found")
    limits = TenantLimits(tenant_id, *row)
    _cache.set(tenant_id, limits)
    return limits


def limits_invalidate() -> None:
    """Forget every tenant's limits in this process (a tenant's change does it through the `tenants` topic)."""
    _cache.clear()
