"""Rate limits on the REST API: per API key and per tenant plan, the 429 contract (body, Retry-After, RateLimit-*),
an exact Retry-After, nothing done for a refused request, and failing open without Redis."""

import logging
import time

import pytest

from apps.runs.models import Execution

pytestmark = pytest.mark.django_db

LIST = "/api/v1/executions/"


@pytest.fixture
def deployed(api):
    owner = api()
    owner.post("/api/v1/workflows/", {"slug": "hello-world", "template": "basic"})
    assert owner.post("/api/v1/workflows/hello-world/deploy/", {}).json()["status"] == "deployed"


def _runs(tenant) -> int:
    from django.db import connection

    connection.set_tenant(tenant)
    count = Execution.objects.count()
    connection.set_schema_to_public()
    return count


def _rate_headers(response) -> tuple:
    return tuple(response.headers.get(name) for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"))


def test_a_successful_response_carries_the_ratelimit_headers(api, limits):
    # given 5 requests a minute for each API key of a standard tenant (a burst of 5, then one every 12 s)
    limits(standard={"credential": 5, "tenant": 1000})
    # when
    first, second = api().get(LIST), api().get(LIST)
    # then the nearest limit is the key's: 4 then 3 left, full again 12 then 24 s later
    assert first.status_code == second.status_code == 200
    assert _rate_headers(first) == ("5", "4", "12")
    assert _rate_headers(second) == ("5", "3", "24")
    assert "Retry-After" not in first.headers


def test_over_the_key_limit_is_429_with_retry_after_and_the_error_shape(api, limits):
    limits(standard={"credential": 5, "tenant": 1000})
    owner = api()
    assert [owner.get(LIST).status_code for _ in range(5)] == [200] * 5
    # when the sixth request of the minute comes (well within a second of the first)
    refused = owner.get(LIST)
    # then
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "rate limit exceeded: 5 requests a minute for this API key; retry in 12 s",
        "code": "rate_limited",
        "fields": {},
        "retry_after": 12,
    }
    assert refused.headers["Retry-After"] == "12"
    assert _rate_headers(refused) == ("5", "0", "60")
    # and another key of the same tenant is not affected
    assert api(role="viewer").get(LIST).status_code == 200


def test_the_tenant_limit_counts_every_key_of_the_tenant_together(api, limits):
    limits(standard={"credential": 100, "tenant": 3})
    assert api(role="owner").get(LIST).status_code == 200
    assert api(role="viewer").get(LIST).status_code == 200
    assert api(role="operator").get(LIST).status_code == 200
    # when a fourth key of acme asks
    refused = api(role="developer").get(LIST)
    # then the tenant's limit refuses it; another tenant is untouched
    assert refused.status_code == 429
    assert refused.json()["detail"] == "rate limit exceeded: 3 requests a minute for this tenant; retry in 20 s"
    assert refused.headers["RateLimit-Limit"] == "3"
    assert api(tenant="globex").get(LIST).status_code == 200


def test_a_refused_execute_runs_nothing(api, limits, deployed, nexus_world):
    acme = nexus_world["tenants"]["acme"]
    limits(standard={"credential": 2, "tenant": 1000})  # from zero: the two calls of `deployed` are not counted
    owner = api()
    assert owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "a"}}).status_code == 200
    assert owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "b"}}).status_code == 200
    assert _runs(acme) == 2
    # when
    refused = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "c"}})
    # then no run was created, and the refusal says when to come back
    assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
    assert _runs(acme) == 2


@pytest.mark.slow
def test_waiting_retry_after_is_exactly_enough(api, limits):
    # given 30 a minute: one request every 2 s once the burst of 30 is spent
    limits(standard={"credential": 30, "tenant": 1000})
    owner = api()
    statuses = []
    while len(statuses) < 40 and (not statuses or statuses[-1] == 200):
        statuses.append(owner.get(LIST).status_code)
    assert statuses[-1] == 429 and statuses.count(200) >= 30
    refused_at = time.monotonic()
    retry_after = int(owner.get(LIST).headers["Retry-After"])
    assert 1 <= retry_after <= 2
    # when the client comes back one second too early, it is still refused
    time.sleep(max(0.0, refused_at + retry_after - 1 - time.monotonic()))
    assert owner.get(LIST).status_code == 429
    # and when it has waited Retry-After, it succeeds
    time.sleep(max(0.0, refused_at + retry_after - time.monotonic()))
    assert owner.get(LIST).status_code == 200


def test_limits_follow_the_tenant_plan(fresh_tenant, client, limits):
    from tests.integration.conftest import ApiClient

    limits(free={"credential": 2, "tenant": 1000}, standard={"credential": 100, "tenant": 1000})
    _, key = fresh_tenant(plan="free")
    caller = ApiClient(client, key)
    assert [caller.get(LIST).status_code for _ in range(3)] == [200, 200, 429]


def test_an_unknown_plan_gets_the_standard_limits(fresh_tenant, client, limits):
    from tests.integration.conftest import ApiClient

    limits(standard={"credential": 1, "tenant": 1000})
    _, key = fresh_tenant(plan="platinum-2030")
    caller = ApiClient(client, key)
    assert [caller.get(LIST).status_code for _ in range(2)] == [200, 429]


def test_switched_off_nothing_is_counted(api, limits, settings):
    limits(standard={"credential": 1, "tenant": 1})
    settings.NEXUS_RATE_LIMIT_ENABLED = False
    responses = [api().get(LIST) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert _rate_headers(responses[-1]) == (None, None, None)


def test_without_redis_requests_pass_and_the_outage_is_logged_once(api, limits, settings, caplog):
    limits(standard={"credential": 1, "tenant": 1})
    settings.NEXUS_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.NEXUS_RATE_LIMIT_RETRY_S = 0.0  # try Redis on every request: each one fails open
    with caplog.at_level(logging.WARNING, logger="apps.ratelimit.limiter"):
        responses = [api().get(LIST) for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert _rate_headers(responses[-1]) == (None, None, None)
    warnings = [record.getMessage() for record in caplog.records if record.name == "apps.ratelimit.limiter"]
    assert len(warnings) == 1 and warnings[0].startswith("rate limits are NOT enforced: Redis at 127.0.0.1:1/0 failed")
