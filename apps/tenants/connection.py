"""The database connection's tenant schema: the one module that reads or switches what django-tenants adds to it.

django-tenants' backend gives the connection `schema_name`, `tenant`, `set_tenant()` and `set_schema_to_public()`;
Django's own type of `connection` knows none of them. Everything else in apps/ goes through these functions, so the
attributes are named once, typed once, and a new call site cannot misspell one.
"""

from typing import Protocol, cast

from django.db import connection

from apps.tenants.models import Tenant


class SchemaOwner(Protocol):
    """What a connection is switched to: a Tenant, or the stand-in django-tenants makes for a bare schema name
    (`set_schema`, `set_schema_to_public`), which has neither id nor slug."""

    schema_name: str


class _TenantConnection(Protocol):
    """django-tenants' DatabaseWrapper, as far as apps/ uses it."""

    schema_name: str
    tenant: SchemaOwner

    def set_tenant(self, tenant: SchemaOwner, include_public: bool = True) -> None: ...

    def set_schema_to_public(self) -> None: ...


# The per-thread proxy itself (it resolves the thread's own connection on every access), seen through its real type.
_connection = cast("_TenantConnection", connection)


def current_schema() -> str:
    """The schema the connection's queries run in (the public schema until something switches it)."""
    return _connection.schema_name


def current_owner() -> SchemaOwner:
    """Whatever the connection was switched to, to switch it back later (or on another thread) with `use_tenant`."""
    return _connection.tenant


def current_tenant() -> Tenant | None:
    """The tenant the connection was switched to; None when it was switched by schema name alone (the public
    schema, or tenant-schemas-celery restoring a schema after a task)."""
    tenant = _connection.tenant
    return tenant if isinstance(tenant, Tenant) else None


class NoTenantOnConnection(RuntimeError):
    """Code that runs only inside a tenant's schema found the connection without a tenant: a bug in a door."""


def require_current_tenant() -> Tenant:
    """The tenant the connection was switched to, for code that only ever runs in one (a run on a worker)."""
    tenant = current_tenant()
    if tenant is None:
        raise NoTenantOnConnection(f"the connection is in schema '{current_schema()}' without its tenant")
    return tenant


def use_tenant(owner: SchemaOwner) -> None:
    """Switch the connection to `owner`'s schema (a Tenant, or what `current_owner` returned)."""
    _connection.set_tenant(owner)


def use_public() -> None:
    """Switch the connection to the public schema."""
    _connection.set_schema_to_public()
