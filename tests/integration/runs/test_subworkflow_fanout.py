"""A tree of parallel subworkflows shares one budget of worker threads and so of database connections.

The child runs execute on worker threads with their own connections, so what they read must be committed:
these tests work in a tenant of their own (`fanout`), with committed rows, and do not wrap the test in a
transaction (as tests/integration/client does); the rows disappear with the test database.
"""

import threading
import time
import uuid

import psycopg
import pytest
from django.db import connection

from apps.core.principal import Principal
from apps.runs.models import Execution
from apps.runs.services import run_execute, run_start
from apps.workflows.services import workflow_create, workflow_deploy

TENANT = "fanout"
WIDTH = 8  # subworkflow nodes per level, all parallel


@pytest.fixture
def transactional_db(django_db_setup, django_db_blocker):
    """Open the database without wrapping the test in a transaction, and without pytest-django's flush of
    every table afterwards (that would delete the session's tenants and keys, `nexus_world`)."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def fanout_tenant(nexus_world, transactional_db):
    from apps.tenants.models import Tenant
    from apps.tenants.services import tenant_create_for_bootstrap

    connection.set_schema_to_public()
    tenant = Tenant.objects.filter(slug=TENANT).first() or tenant_create_for_bootstrap(slug=TENANT)
    connection.set_tenant(tenant)
    return tenant


def _fanout(child: str) -> dict:
    nodes = [
        {"id": f"c{i}", "type": "subworkflow", "config": {"workflow": child, "inputs": {"n": "inputs.n"}}} for i in range(WIDTH)
    ]
    return {
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": [*nodes, {"id": "all", "type": "merge", "config": {"from": [n["id"] for n in nodes], "mode": "list"}}],
        "edges": [{"from": n["id"], "to": "all"} for n in nodes],
        "outputs": {"count": "length(nodes.all)"},
    }


LEAF = {
    "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
    "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 0.02}}],
    "outputs": {"n": "inputs.n"},
}


class _PeakConnections:
    """Samples pg_stat_activity for the test database from a connection of its own (not counted)."""

    def __init__(self):
        params = connection.get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        self.database = connection.settings_dict["NAME"]
        self._connection = psycopg.connect(**params, autocommit=True)
        self.peak_connections = 0
        self.peak_threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _count(self) -> int:
        row = self._connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [self.database]
        ).fetchone()
        return row[0]

    def _sample(self):
        while not self._stop.is_set():
            self.peak_connections = max(self.peak_connections, self._count())
            # The engine's worker threads (other threads, such as the tenant slot's heartbeat, are not runs').
            workers = sum(1 for thread in threading.enumerate() if thread.name.startswith("nexus-run"))
            self.peak_threads = max(self.peak_threads, workers)
            time.sleep(0.005)

    def __enter__(self):
        self.baseline_connections = self._count()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._connection.close()


def test_a_three_level_tree_of_parallel_subworkflows_stays_within_one_thread_budget(fanout_tenant, settings):
    settings.NEXUS_ENGINE_LIMITS = {**settings.NEXUS_ENGINE_LIMITS, "max_parallel_nodes": WIDTH}
    owner = Principal(kind="api_key", actor="apikey:fanout", tenant_id=fanout_tenant.pk, tenant_slug=TENANT, role="owner")
    suffix = uuid.uuid4().hex[:8]
    slugs = {level: f"{level}-{suffix}" for level in ("leaf", "mid", "top")}
    for level, definition in (("leaf", LEAF), ("mid", _fanout(slugs["leaf"])), ("top", _fanout(slugs["mid"]))):
        workflow_create(principal=owner, tenant_id=fanout_tenant.pk, slug=slugs[level], definition=definition)
        workflow_deploy(principal=owner, tenant_id=fanout_tenant.pk, ref=slugs[level])
    queued = run_start(
        principal=owner, tenant_id=fanout_tenant.pk, workflow_ref=slugs["top"], inputs={"n": 1}, channel="api", wait=False
    )

    with _PeakConnections() as peak:
        status = run_execute(run_id=queued.id)

    top = Execution.objects.get(id=queued.id)
    assert (status, top.outputs, top.error) == ("completed", {"count": WIDTH}, None)
    children = Execution.objects.filter(parent_id=top.id)
    assert children.count() == WIDTH
    assert Execution.objects.filter(parent_id__in=children.values("id"), status="completed").count() == WIDTH * WIDTH
    # One budget for the tree: at most WIDTH worker threads, each with at most one connection (the old code
    # gave every child run its own pool: WIDTH + WIDTH * WIDTH threads, as many connections).
    assert peak.peak_threads <= WIDTH
    assert peak.peak_connections - peak.baseline_connections <= WIDTH
