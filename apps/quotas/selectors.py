"""Quota reads: what a tenant has used of its quotas, counted from what is stored in its schema."""

from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.quotas.periods import period_bounds, period_key
from apps.runs.models import Execution
from apps.tenants.models import Tenant
from apps.workflows.models import Workflow

_CHUNK = 200  # tenants per statement


def quota_usage_all_tenants(tenants: list[Tenant]) -> dict[int, dict]:
    """Usage of each tenant by id, `{"workflows", "executions_this_period", "period"}`, in one statement per
    200 tenants (the schemas are named in the SQL, so no search_path change)."""
    now = timezone.now()
    start, end = period_bounds(now, settings.NEXUS_QUOTA_PERIOD)
    period = period_key(now, settings.NEXUS_QUOTA_PERIOD)
    quote = connection.ops.quote_name
    usage: dict[int, dict] = {}
    tenants = list(tenants)
    for offset in range(0, len(tenants), _CHUNK):
        parts, params = [], []
        for tenant in tenants[offset : offset + _CHUNK]:
            schema = quote(tenant.schema_name)
            parts.append(
                f"SELECT %s, (SELECT count(*) FROM {schema}.{Workflow._meta.db_table} WHERE deleted_at IS NULL),"  # noqa: S608
                f" (SELECT count(*) FROM {schema}.{Execution._meta.db_table} WHERE created_at >= %s AND created_at < %s)"
            )
            params += [tenant.pk, start, end]
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(parts), params)
            for tenant_id, workflows, executions in cursor.fetchall():
                usage[tenant_id] = {"workflows": workflows, "executions_this_period": executions, "period": period}
    return usage


def quota_usage(tenant: Tenant) -> dict:
    """What `tenant` has used: `{"workflows": n, "executions_this_period": m, "period": "2026-11"}`."""
    return quota_usage_all_tenants([tenant])[tenant.pk]
