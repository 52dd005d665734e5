"""Isolation levels against the real Redis: per-tenant slots with leases, a worker's tenant queues, and the
round-robin polling that keeps one tenant's backlog from holding up another's queue."""

import time
import uuid
from types import SimpleNamespace

import pytest
from kombu import Consumer, Exchange, Queue

from apps.core import cache
from apps.ops.redis_client import redis_client
from apps.quotas import limits
from apps.runs.models import Execution
from apps.runs.queues import (
    TenantBusy,
    queue_for,
    queues_follow_once,
    slots_key,
    tenant_concurrency,
    tenant_queues_all_tenants,
    tenant_slot_take,
)
from apps.runs.services import run_execute, run_start
from apps.tenants.models import Tenant
from apps.tenants.services import tenant_update
from apps.workflows.services import workflow_create, workflow_deploy
from nexus_site.celery import app as celery_app

pytestmark = pytest.mark.django_db


def _held(tenant) -> list[str]:
    return sorted(member.decode() for member in redis_client().zrange(slots_key(tenant.schema_name), 0, -1))


def test_queue_and_cap_follow_the_isolation_level(make_tenant, settings):
    settings.NEXUS_TENANT_CONCURRENCY = 3
    strict, _ = make_tenant("iso-strict")
    capped, _ = make_tenant("iso-capped", max_concurrent_runs=1)
    shared, _ = make_tenant("iso-shared", isolation="standard", max_concurrent_runs=1)
    assert (queue_for(strict), tenant_concurrency(strict)) == ("nexus.t.t_iso_strict", 3)
    assert (queue_for(capped), tenant_concurrency(capped)) == ("nexus.t.t_iso_capped", 1)
    assert (queue_for(shared), tenant_concurrency(shared)) == ("nexus", None)


def test_slots_cap_a_tenant_and_a_run_keeps_its_own(make_tenant):
    tenant, _ = make_tenant("iso-slots", max_concurrent_runs=2)
    first = tenant_slot_take(tenant=tenant, run_id="run_a")
    second = tenant_slot_take(tenant=tenant, run_id="run_b")
    with pytest.raises(TenantBusy) as busy:
        tenant_slot_take(tenant=tenant, run_id="run_c")
    assert (busy.value.waiting, busy.value.cap) == (1, 2)
    with pytest.raises(TenantBusy) as busy:
        tenant_slot_take(tenant=tenant, run_id="run_d")
    assert busy.value.waiting == 2
    again = tenant_slot_take(tenant=tenant, run_id="run_a")  # a redelivered run re-takes its own slot
    assert _held(tenant) == ["run_a", "run_b"]

    first.release()
    again.release()
    third = tenant_slot_take(tenant=tenant, run_id="run_c")
    assert _held(tenant) == ["run_b", "run_c"]
    waiting = redis_client().zrange(slots_key(tenant.schema_name, "waiting"), 0, -1)
    assert waiting == [b"run_d"]  # run_c stopped waiting when it got its slot
    second.release()
    third.release()
    assert _held(tenant) == []


@pytest.mark.parametrize(
    ("waiting", "cap", "seconds"),
    [(1, 2, 1.0), (2, 2, 1.0), (10, 2, 5.0), (30, 1, 30.0), (5000, 2, 60.0)],
)
def test_waiting_runs_look_again_spread_with_the_backlog(waiting, cap, seconds, settings, monkeypatch):
    settings.NEXUS_TENANT_SLOT_RETRY_S, settings.NEXUS_TENANT_SLOT_RETRY_MAX_S = 1.0, 60.0
    monkeypatch.setattr("apps.runs.queues.random.uniform", lambda low, high: (low + high) / 2)
    assert TenantBusy("t", waiting=waiting, cap=cap).retry_in() == seconds


def test_a_standard_tenant_takes_no_slot(make_tenant):
    tenant, _ = make_tenant("iso-nocap", isolation="standard")
    slots = [tenant_slot_take(tenant=tenant, run_id=f"run_{n}") for n in range(10)]
    assert all(slot.key is None for slot in slots) and _held(tenant) == []


def test_a_dead_workers_slot_frees_itself_and_a_live_one_is_renewed(make_tenant, settings):
    settings.NEXUS_TENANT_SLOT_LEASE_S = 0.3
    tenant, _ = make_tenant("iso-lease", max_concurrent_runs=1)
    live = tenant_slot_take(tenant=tenant, run_id="run_live")
    time.sleep(0.8)  # more than two leases: only renewal keeps it
    with pytest.raises(TenantBusy):
        tenant_slot_take(tenant=tenant, run_id="run_other")

    live._stop.set()  # the worker dies: nobody renews, nobody releases
    time.sleep(0.5)
    taken = tenant_slot_take(tenant=tenant, run_id="run_other")
    assert _held(tenant) == ["run_other"]
    taken.release()


@pytest.fixture
def slow_run(make_tenant, principal_of, in_schema):
    """A tenant capped at one run at once, and a queued run of it."""
    tenant, _ = make_tenant("iso-busy", max_concurrent_runs=1)
    owner = principal_of(tenant)
    definition = {"nodes": [{"id": "t", "type": "template", "config": {"template": "done"}}], "outputs": {"r": "nodes.t"}}
    in_schema(tenant, workflow_create, principal=owner, tenant_id=tenant.pk, slug="w", definition=definition)
    in_schema(tenant, workflow_deploy, principal=owner, tenant_id=tenant.pk, ref="w")
    run = in_schema(
        tenant, run_start, principal=owner, tenant_id=tenant.pk, workflow_ref="w", inputs={}, channel="api", wait=False
    )
    return tenant, run


def test_a_run_without_a_slot_stays_queued_untouched(slow_run, in_schema):
    tenant, run = slow_run
    other = tenant_slot_take(tenant=tenant, run_id="run_elsewhere")

    with pytest.raises(TenantBusy):
        in_schema(tenant, run_execute, run_id=run.id)

    stored = in_schema(tenant, lambda: Execution.objects.get(id=run.id))
    assert (stored.status, stored.attempt, stored.started_at, stored.steps) == ("queued", 0, None, [])
    other.release()
    assert in_schema(tenant, run_execute, run_id=run.id) == "completed"  # the advisory lock was let go too
    stored = in_schema(tenant, lambda: Execution.objects.get(id=run.id))
    assert (stored.status, stored.attempt) == ("completed", 1) and _held(tenant) == []


def test_a_cancelled_or_finished_run_needs_no_slot(slow_run, in_schema, principal_of):
    from apps.runs.services import run_cancel

    tenant, run = slow_run
    other = tenant_slot_take(tenant=tenant, run_id="run_elsewhere")
    in_schema(tenant, run_cancel, principal=principal_of(tenant), tenant_id=tenant.pk, run_id=run.id)
    assert in_schema(tenant, run_execute, run_id=run.id) == "cancelled"
    other.release()


class _FakeControl:
    def __init__(self):
        self.calls = []

    def add_consumer(self, queue, destination, reply):
        self.calls.append(("add", queue, tuple(destination)))

    def cancel_consumer(self, queue, destination, reply):
        self.calls.append(("cancel", queue, tuple(destination)))


def _consumer(*consuming: str):
    return SimpleNamespace(
        hostname="w1@test",
        task_consumer=SimpleNamespace(queues=[SimpleNamespace(name=name) for name in consuming]),
        app=SimpleNamespace(control=_FakeControl()),
    )


def test_a_worker_consumes_every_strict_tenants_queue_and_drops_deleted_ones(make_tenant):
    make_tenant("iso-new")
    make_tenant("iso-std", isolation="standard")
    strict = {f"nexus.t.{s}" for s in Tenant.objects.real().filter(isolation="strict").values_list("schema_name", flat=True)}
    consumer = _consumer("nexus", "nexus.t.t_acme", "nexus.t.t_gone")

    queues_follow_once(consumer)

    calls = consumer.app.control.calls
    assert ("add", "nexus.t.t_iso_new", ("w1@test",)) in calls
    assert {queue for kind, queue, _ in calls if kind == "add"} == strict - {"nexus.t.t_acme"}
    assert [call for call in calls if call[0] == "cancel"] == [("cancel", "nexus.t.t_gone", ("w1@test",))]
    assert "nexus.t.t_iso_std" not in {queue for _, queue, _ in calls}


def test_a_tenant_that_left_strict_isolation_is_served_until_its_queue_is_empty(make_tenant, admin_principal):
    make_tenant("iso-moved")
    tenant_update(principal=admin_principal, slug="iso-moved", isolation="standard")
    client = redis_client()
    assert "nexus.t.t_iso_moved" not in tenant_queues_all_tenants()
    client.lpush("nexus.t.t_iso_moved", "{}")
    try:
        assert "nexus.t.t_iso_moved" in tenant_queues_all_tenants()
    finally:
        client.delete("nexus.t.t_iso_moved")


def test_the_broker_polls_queues_in_turn_so_a_backlog_does_not_hold_up_another_queue():
    """Kombu's Redis transport with our settings: one BRPOP over every queue, and the queue a message came
    from moves to the end of the list. 20 messages wait in `noisy`; `quiet`'s one message comes second."""
    tag = uuid.uuid4().hex[:8]
    noisy, quiet = f"nexus.t.fair_{tag}_noisy", f"nexus.t.fair_{tag}_quiet"
    queues = [Queue(name, Exchange(name), routing_key=name) for name in (noisy, quiet)]
    received: list[str] = []
    with celery_app.connection_for_write() as conn:
        try:
            producer = conn.Producer()
            for number in range(20):
                producer.publish({"n": number}, exchange="", routing_key=noisy, declare=[queues[0]])
            producer.publish({"n": 0}, exchange="", routing_key=quiet, declare=[queues[1]])

            def on_message(body, message):
                received.append(message.delivery_info["routing_key"])
                message.ack()

            with Consumer(conn, queues=queues, callbacks=[on_message], prefetch_count=1):
                deadline = time.monotonic() + 10
                while len(received) < 21 and time.monotonic() < deadline:
                    conn.drain_events(timeout=1)
        finally:
            client = redis_client()
            for name in (noisy, quiet):
                client.delete(name, f"_kombu.binding.{name}")
    assert len(received) == 21
    assert received.index(quiet) <= 1, received


def test_limits_are_cached_for_a_few_seconds_and_an_update_applies_at_once(make_tenant, admin_principal, monkeypatch, settings):
    settings.NEXUS_TENANT_LIMITS_CACHE_S = 5.0
    clock = {"now": 1000.0}
    monkeypatch.setattr(cache.time, "monotonic", lambda: clock["now"])  # the clock of the TTL caches
    tenant, _ = make_tenant("iso-cached")
    assert limits.tenant_limits(tenant.pk).quota_executions is None

    Tenant.objects.filter(pk=tenant.pk).update(quota_executions=7, isolation="standard")  # by another process
    clock["now"] += 4
    assert limits.tenant_limits(tenant.pk).quota_executions is None
    clock["now"] += 2
    fresh = limits.tenant_limits(tenant.pk)
    assert (fresh.quota_executions, fresh.isolation, queue_for(fresh)) == (7, "standard", "nexus")

    tenant_update(principal=admin_principal, slug="iso-cached", quota_executions=9)  # by this process: at once
    assert limits.tenant_limits(tenant.pk).quota_executions == 9


def test_cached_limits_cost_no_query(make_tenant, django_assert_num_queries):
    tenant, _ = make_tenant("iso-noquery")
    limits.tenant_limits(tenant.pk)
    with django_assert_num_queries(0):
        for _ in range(100):
            limits.tenant_limits(tenant.pk)
