"""The limiter against the real Redis: two nodes share the counts, applications' limits, the 150-call burst, and
the exactness of Retry-After at the level of the Redis script."""

import time
import uuid

import pytest

from apps.core.principal import Principal
from apps.ratelimit.limiter import Limit, RedisLimiter

pytestmark = pytest.mark.django_db

# Refusals are counted in the shared metrics hash: under a tenant label of this run's own, removed afterwards.
LABEL = f"rl-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def nodes(settings):
    """Two limiters with their own Redis clients and connections, as two web nodes have."""
    from apps.ops.redis_client import redis_client

    prefix = f"nexus:rl-test:{uuid.uuid4().hex[:12]}:"
    made = [RedisLimiter(url=settings.REDIS_URL, prefix=prefix, timeout_s=1.0, retry_s=2.0) for _ in range(2)]
    yield made
    for limiter in made:
        limiter.close()
    client = redis_client()
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)


@pytest.fixture(autouse=True)
def _label_counts_removed():
    from apps.ops.redis_client import redis_client

    yield
    client = redis_client()
    for field in client.hkeys("nexus:metrics:rate_limited"):
        if field.decode().startswith(f"{LABEL}|"):
            client.hdel("nexus:metrics:rate_limited", field)


def _limits(tenant_limit: int = 1000) -> tuple[Limit, ...]:
    return (Limit("k:key_one", 5, 60, "api_key"), Limit("t:1", tenant_limit, 60, "tenant"))


def test_two_nodes_count_one_key_together(nodes):
    first, second = nodes
    outcomes = [(first if n % 2 else second).check(_limits(), tenant=LABEL).allowed for n in range(7)]
    assert outcomes == [True] * 5 + [False] * 2


def test_two_nodes_count_one_tenant_together(nodes):
    first, second = nodes
    key_a = (Limit("k:key_a", 100, 60, "api_key"), Limit("t:7", 3, 60, "tenant"))
    key_b = (Limit("k:key_b", 100, 60, "api_key"), Limit("t:7", 3, 60, "tenant"))
    assert (
        first.check(key_a, tenant=LABEL).allowed
        and second.check(key_b, tenant=LABEL).allowed
        and first.check(key_b, tenant=LABEL).allowed
    )
    refused = second.check(key_a, tenant=LABEL)
    assert (refused.allowed, refused.scope, refused.limit) == (False, "tenant", 3)


def test_a_refused_request_charges_no_limit(nodes):
    first, _ = nodes
    # given the tenant's limit is spent while the key's is not
    tight = (Limit("k:key_c", 100, 60, "api_key"), Limit("t:8", 1, 60, "tenant"))
    assert first.check(tight, tenant=LABEL).allowed
    assert not first.check(tight, tenant=LABEL).allowed
    # then the refused request did not count against the key: after the first and this one, 98 of 100 are left
    alone = first.check((Limit("k:key_c", 100, 60, "api_key"),), tenant=LABEL)
    assert (alone.allowed, alone.remaining) == (True, 98)


def test_retry_after_is_the_exact_wait(nodes):
    first, second = nodes
    every_half_second = (Limit("k:key_d", 2, 1.0, "api_key"),)  # 2 per second: one back every 0.5 s
    assert first.check(every_half_second, tenant=LABEL).allowed and second.check(every_half_second, tenant=LABEL).allowed
    refused = first.check(every_half_second, tenant=LABEL)
    assert not refused.allowed and 400_000 < refused.retry_after_us <= 500_000 and refused.retry_after_s == 1
    # 30 ms before the exact time: still refused; at it: admitted
    time.sleep(max(0.0, refused.retry_after_us / 1e6 - 0.03))
    assert not second.check(every_half_second, tenant=LABEL).allowed
    time.sleep(0.035)
    assert second.check(every_half_second, tenant=LABEL).allowed


def test_a_new_application_gets_fewer_than_150_calls_a_minute(limits, nexus_world):
    from apps.ratelimit.policy import principal_check

    acme = nexus_world["tenants"]["acme"]
    app = Principal(
        kind="api_key",
        actor="apikey:key_app",
        tenant_id=acme.pk,
        tenant_slug=LABEL,  # acme's plan; its refusals counted under this run's label
        role="operator",
        api_key_id=f"key_{uuid.uuid4().hex[:8]}",
        application_id=f"app_{uuid.uuid4().hex[:8]}",
    )
    # when an application with no limit of its own makes 150 calls in a burst (well under a second)
    decisions = [principal_check(app) for _ in range(150)]
    # then the standard plan's 100 a minute admits 100 and refuses the rest, naming the application
    assert sum(decision.allowed for decision in decisions) == 100
    assert decisions[100].scope == "application" and decisions[100].limit == 100
    assert decisions[100].retry_after_s == 1  # one call back every 0.6 s


def test_an_applications_own_limit_wins_over_its_plan(limits, nexus_world):
    from dataclasses import replace

    from apps.ratelimit.policy import principal_check

    acme = nexus_world["tenants"]["acme"]
    app = Principal(
        kind="api_key",
        actor="apikey:key_app",
        tenant_id=acme.pk,
        tenant_slug=LABEL,  # acme's plan; its refusals counted under this run's label
        role="operator",
        api_key_id="key_app",
        application_id=f"app_{uuid.uuid4().hex[:8]}",
        rate_limit_per_minute=3,
    )
    assert [principal_check(app).allowed for _ in range(4)] == [True, True, True, False]
    # and its OAuth2 token (no API key) counts under the same application
    token = replace(app, api_key_id=None, actor="oauth:app")
    assert not principal_check(token).allowed
