"""Publish hooks: other apps act on every stored event (webhook deliveries) without events importing them.

An app registers a hook once, in its AppConfig.ready(). `publish()` calls every hook with the stored event,
inside the publisher's transaction, so whatever a hook writes commits or rolls back with the event itself;
anything beyond the database (a Celery message) the hook schedules with `transaction.on_commit`.

`interested()` lets a publisher that would skip unwatched events (runs without a session) ask whether any
hook wants a type before paying for the event. It must be cheap: hooks answer from a per-process cache.
"""

from collections.abc import Callable
from dataclasses import dataclass

from apps.tenants.connection import current_schema, current_tenant
from apps.tenants.models import Tenant


@dataclass(frozen=True, slots=True)
class PublishHook:
    name: str
    # (event in the DESIGN §8 shape, tenant id): called in the publishing transaction.
    on_publish: Callable[[dict, int], object]  # what it returns is not used
    # (tenant id, event type or `<entity>.*`): would on_publish act on such an event?
    interested: Callable[[int, str], bool]


_hooks: dict[str, PublishHook] = {}


def hook_register(hook: PublishHook) -> None:
    """Register (or replace, by name: ready() may run twice in tests) a publish hook."""
    _hooks[hook.name] = hook


def hooks_run(payload: dict, *, tenant_id: int | None) -> None:
    if tenant_id is None:  # the public schema publishes nothing a tenant subscribes to
        return
    for hook in _hooks.values():
        hook.on_publish(payload, tenant_id)


def hooks_interested(tenant_id: int | None, event_type: str) -> bool:
    if tenant_id is None:
        return False
    return any(hook.interested(tenant_id, event_type) for hook in _hooks.values())


def connection_tenant() -> tuple[int | None, str]:
    """(id, slug) of the tenant whose schema the connection is in; (None, schema) in the public schema.

    A connection switched with set_schema() carries no tenant object (tenant-schemas-celery restores the schema
    that way after a task, and the tenant middleware keeps a connection already in the right schema): then the
    tenant is read by its schema name, so hooks never see an event without its tenant.
    """
    tenant = current_tenant()
    if tenant is not None and tenant.pk is not None:
        return tenant.pk, tenant.slug
    schema = current_schema()
    found = Tenant.objects.filter(schema_name=schema).exclude(schema_name="public").values_list("pk", "slug").first()
    return (found[0], found[1]) if found else (None, tenant.slug if tenant is not None else schema)
