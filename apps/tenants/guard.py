"""The second line of the tenant boundary: a service asked about tenant N must be running in tenant N's schema.

Every door switches the connection to the caller's tenant before it calls a service (the tenant middleware, the
tenant-aware Celery app, the WebSocket and MCP doors, the CLI's `--tenant`), and services take `tenant_id`
explicitly. Nothing else ties the two together: a door that forgot to switch, or switched to another tenant, would
read one tenant's rows under another's id. `require_schema` (called by every access check) makes that a loud
programming error instead of a leak. The public schema passes: tenant tables do not exist there (a query fails),
and the shared tables in it are filtered by `tenant_id` anyway.
"""

from django.conf import settings

from apps.tenants.connection import current_schema, current_tenant
from apps.tenants.models import Tenant

# tenant id -> schema name, learnt from the tenant objects the connection is switched to. A tenant's schema name
# never changes and a deleted tenant's id is never reused, so entries never go stale.
_schemas: dict[int, str] = {}


class TenantSchemaMismatch(RuntimeError):
    """A service ran for one tenant while the connection was in another tenant's schema: a bug in a door."""


def _schema_of(tenant_id: int) -> str | None:
    schema = _schemas.get(tenant_id)
    if schema is None:
        # Only when the connection was switched by schema name alone (no tenant object): once per tenant per process.
        schema = Tenant.objects.filter(pk=tenant_id).values_list("schema_name", flat=True).first()
        if schema is not None:
            _schemas[tenant_id] = schema
    return schema


def require_schema(tenant_id: int | None) -> None:
    """Raise TenantSchemaMismatch unless the connection is in `tenant_id`'s schema (or in the public schema)."""
    schema = current_schema()
    if tenant_id is None or schema == settings.PUBLIC_SCHEMA_NAME:
        return
    tenant = current_tenant()
    pk = tenant.pk if tenant is not None else None
    if tenant is not None and pk is not None:
        _schemas.setdefault(pk, tenant.schema_name)
        if pk == tenant_id:
            return
    elif _schema_of(tenant_id) == schema:
        return
    raise TenantSchemaMismatch(f"a service for tenant {tenant_id} ran in schema '{schema}', another tenant's")
