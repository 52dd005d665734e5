"""Wait slots (apps/runs/waits.py) against the real Redis: the per-tenant cap across processes is a set of
leases that a dead holder cannot keep, and the per-process cap counts this process's waiting threads."""

import time

import pytest
from django.utils import timezone

from apps.ops.redis_client import redis_client
from apps.runs.models import Execution
from apps.runs.services import run_start
from apps.runs.waits import tenant_wait_release, tenant_wait_take, wait_slot_take, waits_key
from apps.workflows.services import workflow_create, workflow_deploy

TENANT = 987_654  # no real tenant: the slots are keyed by id only


@pytest.fixture
def clean_slots():
    redis_client().delete(waits_key(TENANT))
    yield
    redis_client().delete(waits_key(TENANT))


@pytest.mark.django_db
def test_the_tenant_cap_holds_across_holders_and_a_dead_holders_lease_runs_out(settings, clean_slots):
    settings.NEXUS_WAIT_MAX_PER_TENANT = 2
    # given one holder that will die without releasing (a short lease) and one that lives
    dead = tenant_wait_take(tenant_id=TENANT, lease_s=0.3)
    alive = tenant_wait_take(tenant_id=TENANT, lease_s=30)
    assert dead is not None and alive is not None and dead != alive
    # then the tenant is full
    assert tenant_wait_take(tenant_id=TENANT, lease_s=30) is None
    assert redis_client().zcard(waits_key(TENANT)) == 2
    # when the dead holder's lease runs out, its slot is free again; the living one's is not
    time.sleep(0.4)
    third = tenant_wait_take(tenant_id=TENANT, lease_s=30)
    assert third is not None
    assert tenant_wait_take(tenant_id=TENANT, lease_s=30) is None
    assert {member.decode() for member in redis_client().zrange(waits_key(TENANT), 0, -1)} == {alive, third}
    # and a release frees a slot at once
    tenant_wait_release(tenant_id=TENANT, token=alive)
    assert tenant_wait_take(tenant_id=TENANT, lease_s=30) is not None


@pytest.mark.django_db
def test_the_process_cap_counts_waiting_threads_of_this_process(settings, clean_slots):
    settings.NEXUS_WAIT_MAX_PER_PROCESS = 1
    settings.NEXUS_WAIT_MAX_PER_TENANT = 10
    with wait_slot_take(tenant_id=TENANT) as first:
        assert first.taken
        second = wait_slot_take(tenant_id=TENANT)
        assert not second.taken
        # a wait that holds no thread (MCP) counts against the tenant only
        polled = wait_slot_take(tenant_id=TENANT, in_process=False)
        assert polled.taken
        polled.release()
        # a refused slot holds nothing in the tenant either
        assert redis_client().zcard(waits_key(TENANT)) == 1
    with wait_slot_take(tenant_id=TENANT) as again:
        assert again.taken
    assert redis_client().zcard(waits_key(TENANT)) == 0


@pytest.mark.django_db
def test_a_zero_tenant_cap_never_waits(settings, clean_slots):
    settings.NEXUS_WAIT_MAX_PER_TENANT = 0
    slot = wait_slot_take(tenant_id=TENANT)
    assert not slot.taken
    # and the process slot it would have taken is given back
    settings.NEXUS_WAIT_MAX_PER_TENANT = 1
    settings.NEXUS_WAIT_MAX_PER_PROCESS = 1
    with wait_slot_take(tenant_id=TENANT) as slot:
        assert slot.taken


@pytest.mark.django_db
def test_a_capped_wait_returns_the_run_queued_at_once(owner, acme, settings):
    # given a workflow a worker must run (a delay: never inline), and every tenant slot taken
    settings.NEXUS_WAIT_MAX_PER_TENANT = 1
    redis_client().delete(waits_key(acme.pk))
    holder = tenant_wait_take(tenant_id=acme.pk, lease_s=30)
    slow = {"nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 1}}], "outputs": {"w": "nodes.wait"}}
    workflow_create(principal=owner, tenant_id=acme.pk, slug="slow", definition=slow)
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="slow")
    try:
        # when a caller asks to wait
        started = timezone.now()
        execution = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="slow", inputs={}, channel="api", wait=True)
        # then it gets the run at once, queued and marked capped; the run itself is stored and queued
        assert (timezone.now() - started).total_seconds() < 1
        assert execution.status == "queued" and execution.wait_capped is True
        assert Execution.objects.get(id=execution.id).status == "queued"
    finally:
        tenant_wait_release(tenant_id=acme.pk, token=holder)
