"""Which limits a principal counts against, and how a refusal reads."""

from apps.core.principal import Principal
from apps.ratelimit.limiter import Decision, Limit
from apps.ratelimit.policy import attempt_limits, principal_limits, refusal

PLAN = {"tenant": 1000, "credential": 50, "app": 100}


def _principal(**fields) -> Principal:
    return Principal(kind="api_key", actor="apikey:x", tenant_id=7, tenant_slug="acme", role="owner", **fields)


def test_an_api_key_counts_per_key_and_per_tenant():
    assert principal_limits(_principal(api_key_id="key_1"), PLAN) == (
        Limit("k:key_1", 50, 60.0, "api_key"),
        Limit("t:7", 1000, 60.0, "tenant"),
    )


def test_an_application_counts_as_one_whatever_its_credential_with_its_own_limit_or_the_plans():
    assert principal_limits(_principal(api_key_id="key_1", application_id="app_1"), PLAN)[0] == Limit(
        "a:app_1", 100, 60.0, "application"
    )
    own = _principal(application_id="app_1", rate_limit_per_minute=7)
    assert principal_limits(own, PLAN)[0] == Limit("a:app_1", 7, 60.0, "application")
    assert principal_limits(_principal(application_id="app_1", rate_limit_per_minute=0), PLAN)[0].limit == 1


def test_a_user_counts_per_tenant():
    assert principal_limits(_principal(user_id=42), PLAN)[0] == Limit("u:7:42", 50, 60.0, "user")


def test_a_principal_without_credential_or_tenant_has_no_limit():
    system = Principal(kind="system", actor="system:x", tenant_id=None, tenant_slug=None, role=None)
    assert principal_limits(system, PLAN) == ()


def test_attempts_count_per_account_normalised_and_per_address(settings):
    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT, settings.NEXUS_LOGIN_THROTTLE_IP = 10, 50
    settings.NEXUS_LOGIN_THROTTLE_PERIOD_S = 300.0
    by_name = attempt_limits(scope="login", account=" Alice", ip="10.0.0.1")
    assert by_name[0] == attempt_limits(scope="login", account="alice", ip="10.0.0.2")[0]
    assert "alice" not in by_name[0].key  # hashed: Redis does not list who tried
    assert (by_name[0].limit, by_name[0].period_s, by_name[1]) == (10, 300.0, Limit("f:login:ip:10.0.0.1", 50, 300.0, "login"))
    assert attempt_limits(scope="oauth", account=None, ip=None) == (Limit("f:oauth:ip:unknown", 50, 300.0, "oauth"),)


def _refused(limit: int, period_s: float, scope: str, retry: int) -> Decision:
    return Decision(False, limit, period_s, 0, int(period_s), retry, retry * 1_000_000, scope)


def test_refusals_say_what_refused_and_when_to_retry():
    error = refusal(_refused(100, 60, "application", 1))
    assert (error.status, error.retry_after) == (429, 1)
    assert error.as_dict() == {
        "detail": "rate limit exceeded: 100 requests a minute for this API application; retry in 1 s",
        "code": "rate_limited",
        "fields": {},
        "retry_after": 1,
    }
    assert refusal(_refused(10, 300, "login", 30)).detail == (
        "too many failed login attempts: at most 10 per 5 minutes per account and per client; retry in 30 s"
    )
    assert refusal(_refused(3, 10, "exports", 4)).detail == "rate limit exceeded: 3 requests per 10 s for exports; retry in 4 s"
