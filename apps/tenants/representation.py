"""The one JSON shape of a tenant, shared by every channel (API, CLI)."""

from typing import Any

from apps.core.dates import iso_utc
from apps.tenants.models import Tenant


def tenant_data(tenant: Tenant, *, usage: dict | None = None) -> dict[str, Any]:
    """`usage` (apps.quotas.selectors.quota_usage) is shown next to the quotas when the caller counted it."""
    data = {
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan,
        "quotas": {
            "workflows": tenant.quota_workflows,
            "executions": tenant.quota_executions,
            "mail_per_day": tenant.quota_mail_per_day,  # null: the platform's NEXUS_MAIL_PER_TENANT_PER_DAY
        },
        "usage": usage,
        "isolation": tenant.isolation,
        "max_concurrent_runs": tenant.max_concurrent_runs,
        "active": tenant.is_active,
        "schema": tenant.schema_name,
        "created_at": iso_utc(tenant.created_at),
    }
    if usage is None:
        del data["usage"]
    return data
