"""Client fixtures: a live WSGI server on loopback, a tenant of its own with committed keys, NexusClient factories.

The live server answers on its own threads and connections, so what it reads must be committed, and what it
writes is committed. pytest-django would have `live_server` flush every public table after each test (its
`transactional_db`): that would also delete the session's tenants and keys (`nexus_world`). Here
`transactional_db` only opens the database instead, and every test works inside the tenant `sdk`, which no
other test reads, with names of its own; what the tests leave there disappears with the test database.
"""

import threading
import uuid

import pytest

TENANT = "sdk"


@pytest.fixture
def transactional_db(django_db_setup, django_db_blocker, live_server):
    with django_db_blocker.unblock():
        yield
        # A request the client has its answer to may still be closing on its server thread, and Django touches
        # the database then (request_finished): let those threads end before the database is blocked again.
        # (The server's request threads are daemons, which socketserver does not keep a list of.)
        for thread in threading.enumerate():
            if thread.name.endswith("(process_request_thread)"):
                thread.join(timeout=5)


@pytest.fixture(scope="session")
def sdk_world(nexus_world, django_db_blocker):
    """The tenant `sdk` with an owner and a viewer key, committed."""
    from django.db import connection

    from apps.accounts.models import Role
    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_create_for_bootstrap

    with django_db_blocker.unblock():
        connection.set_schema_to_public()
        tenant = Tenant.objects.filter(slug=TENANT).first() or tenant_create_for_bootstrap(slug=TENANT)
        connection.set_schema_to_public()
        system = Principal(
            kind="system", actor="system:test", tenant_id=tenant.pk, tenant_slug=TENANT, role="owner", is_platform_admin=True
        )
        keys = {}
        for role in (Role.OWNER, Role.VIEWER):
            _, keys[role] = apikey_create(principal=system, tenant=tenant, role=role, name=f"sdk-{role}")
    return {"tenant": tenant, "keys": keys}


@pytest.fixture
def nexus(live_server, sdk_world):
    """nexus(role="owner", **options) -> a NexusClient for the live server with that role's key."""
    from nexus_client import NexusClient

    clients = []

    def make(role: str = "owner", **options):
        options.setdefault("api_key", sdk_world["keys"][role])
        client = NexusClient(live_server.url, timeout=30, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def unique():
    """unique("hello") -> "hello-1a2b3c4d": names that no earlier test in the tenant has used."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:8]}"
