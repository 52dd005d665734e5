"""GET /health: terse and cheap for anyone (no SCAN or KEYS over Redis, no host names, pids or error texts),
detailed for platform admins; worker liveness in one sorted set."""

import time
import uuid

import pytest

from apps.ops.redis_client import redis_client
from apps.ops.services import WORKER_TTL_S, WORKERS_KEY, worker_gone, worker_heartbeat, workers_live, workers_live_count
from tests.integration.tenants.conftest import admin_api  # noqa: F401 (fixture: a platform admin's API client)

pytestmark = pytest.mark.django_db


@pytest.fixture
def worker():
    name = f"worker-test-{uuid.uuid4().hex[:8]}@host"
    worker_heartbeat(name)
    yield name
    worker_gone(name)


@pytest.fixture
def crowded_redis():
    """Redis holding 20,000 keys, the way rate-limit state fills it."""
    client = redis_client()
    prefix = f"nexus:health-test:{uuid.uuid4().hex[:8]}:"
    pipe = client.pipeline(transaction=False)
    for n in range(20_000):
        pipe.set(f"{prefix}{n}", "1", ex=600)
    pipe.execute()
    yield
    for start in range(0, 20_000, 1000):
        client.delete(*(f"{prefix}{n}" for n in range(start, start + 1000)))


def _command_calls(name: str) -> int:
    return int(redis_client().info("commandstats").get(f"cmdstat_{name}", {}).get("calls", 0))


def test_anonymous_health_says_only_the_status_and_which_checks_pass(client, worker):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "healthy": True,
        "status": "healthy",
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "workers": {"ok": True}},
    }


def test_anonymous_health_neither_scans_nor_lists_the_keyspace(client, worker, crowded_redis):
    scans, keys, zcounts = _command_calls("scan"), _command_calls("keys"), _command_calls("zcount")
    for _ in range(5):
        assert client.get("/health").json()["healthy"] is True
    assert (_command_calls("scan"), _command_calls("keys")) == (scans, keys)
    assert _command_calls("zcount") == zcounts + 5  # one O(log n) count per call


def test_a_tenant_credential_gets_the_terse_answer_too(api, worker):
    body = api("acme", "owner").get("/health").json()
    assert set(body) == {"healthy", "status", "checks"}
    assert body["checks"]["workers"] == {"ok": True}


def test_a_platform_admin_gets_the_details(admin_api, worker):  # noqa: F811
    body = admin_api.get("/health").json()
    assert set(body) == {"healthy", "status", "checks", "node"}
    assert set(body["node"]) == {"id", "region", "version", "pid"}
    assert worker in body["checks"]["workers"]["names"]
    assert body["checks"]["workers"]["count"] == len(body["checks"]["workers"]["names"])
    assert body["checks"]["database"]["ok"] is True and "latency_ms" in body["checks"]["database"]


def test_a_worker_counts_while_its_heartbeat_is_fresh_and_not_after_it_leaves(worker):
    stale = f"worker-stale-{uuid.uuid4().hex[:8]}@host"
    redis_client().zadd(WORKERS_KEY, {stale: time.time() - WORKER_TTL_S - 1})
    try:
        live = workers_live()
        assert worker in live and stale not in live
        assert workers_live_count() == len(live)
        worker_gone(worker)
        assert worker not in workers_live()
    finally:
        redis_client().zrem(WORKERS_KEY, stale)


def test_health_without_workers_is_degraded_for_anyone(client):
    redis_client().delete(WORKERS_KEY)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "healthy": False,
        "status": "degraded",
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "workers": {"ok": False}},
    }
