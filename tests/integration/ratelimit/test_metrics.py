"""GET /metrics: who may read it, and every 429 counted there (Redis-backed, so every node adds to one total)."""

import pytest

from tests.integration.conftest import ApiClient

pytestmark = pytest.mark.django_db

TOKEN = "scrape-token-0123456789abcdef"


def _lines(response) -> list[str]:
    return response.content.decode().splitlines()


def test_every_429_is_counted_by_tenant_and_scope(fresh_tenant, client, limits, settings):
    # given a tenant whose key may make 1 request a minute
    limits(standard={"credential": 1, "tenant": 1000})
    tenant, key = fresh_tenant()
    caller = ApiClient(client, key)
    # when it makes three
    assert [caller.get("/api/v1/executions/").status_code for _ in range(3)] == [200, 429, 429]
    # then the scrape shows both refusals under its slug and the key's scope
    settings.NEXUS_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    lines = _lines(response)
    assert f'nexus_rate_limited_total{{scope="api_key",tenant="{tenant.slug}"}} 2.0' in lines
    assert "nexus_up 1.0" in lines and "nexus_redis_up 1.0" in lines
    assert "# TYPE nexus_webhook_deliveries_total counter" in lines
    assert any(line.startswith('nexus_webhook_deliveries_total{status="delivered"} ') for line in lines)


def test_a_refused_login_is_counted_without_a_tenant(settings, limits, login):
    from apps.ops.metrics import counter_key
    from apps.ops.redis_client import redis_client

    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT = 1
    before = int(redis_client().hget(counter_key("rate_limited"), "|login") or 0)
    assert login("nobody-here", "guess").status_code == 401
    assert login("nobody-here", "guess").status_code == 429
    assert int(redis_client().hget(counter_key("rate_limited"), "|login")) == before + 1


def test_without_a_credential_metrics_are_refused(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json() == {"detail": "authentication credentials were not provided", "code": "not_authenticated"}
    assert response["WWW-Authenticate"] == 'Bearer realm="nexus"'


def test_a_wrong_token_is_refused(client, settings):
    settings.NEXUS_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-token-guess")
    assert response.status_code == 401
    assert "nexus_" not in response.content.decode()


def test_a_tenant_owner_is_refused_whatever_the_role(api):
    from apps.audit.models import AuditEvent

    response = api(role="owner").get("/metrics")
    assert response.status_code == 403
    assert response.json() == {
        "detail": "metrics cover every tenant: only platform admins and the metrics token may read them",
        "code": "permission_denied",
    }
    assert AuditEvent.objects.filter(action="access.denied", target="metrics.read").count() == 1


def test_a_platform_admin_reads_the_metrics(admin_api):
    response = admin_api.get("/metrics")
    assert response.status_code == 200 and "nexus_up 1.0" in _lines(response)


def test_loopback_without_credential_only_when_allowed(client, settings):
    assert client.get("/metrics").status_code == 401
    settings.NEXUS_METRICS_ALLOW_LOOPBACK = True
    assert client.get("/metrics").status_code == 200  # the test client's address is 127.0.0.1
    # a remote client behind the (trusted, loopback) proxy is not on this machine
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 401


def test_only_get(client, settings):
    settings.NEXUS_METRICS_TOKEN = TOKEN
    response = client.post("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 405 and response["Allow"] == "GET"


def test_counter_incr_adds_to_the_shared_counter(client, settings):
    import uuid

    from apps.ops.metrics import counter_field, counter_incr, counter_key
    from apps.ops.redis_client import redis_client

    labels = {"tenant": f"rl-{uuid.uuid4().hex[:10]}", "scope": "exports"}
    counter_incr("rate_limited", labels)
    counter_incr("rate_limited", labels, amount=2)
    settings.NEXUS_METRICS_TOKEN = TOKEN
    try:
        lines = _lines(client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    finally:
        redis_client().hdel(counter_key("rate_limited"), counter_field("rate_limited", labels))
    assert f'nexus_rate_limited_total{{scope="exports",tenant="{labels["tenant"]}"}} 3.0' in lines
