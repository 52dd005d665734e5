"""The one JSON shape of a tenant, shared by every channel (API, CLI)."""

from typing import Any

from apps.tenants.models import Tenant


def tenant_data(tenant: Tenant) -> dict[str, Any]:
    return {
        "slug": tenant.slug,
        "name": tenant.name,
        "plan": tenant.plan,
        "quotas": {"workflows": tenant.quota_workflows, "executions": tenant.quota_executions},
        "isolation": tenant.isolation,
        "active": tenant.is_active,
        "schema": tenant.schema_name,
        "created_at": tenant.created_at.isoformat().replace("+00:00", "Z"),
    }
