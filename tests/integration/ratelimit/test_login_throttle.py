"""Failed-attempt limits on the endpoints that take a secret: per username and per client address at
POST /api/v1/auth/token/, per client id and address at /oauth/token/ (whatever view serves it)."""

import base64
import itertools
import json
import uuid

import pytest
from django.http import JsonResponse
from django.test import RequestFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-password-1"


@pytest.fixture
def throttle(settings, limits):
    """3 failures per username and 5 per client address every 5 minutes (one back every 100 s and 60 s)."""
    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT = 3
    settings.NEXUS_LOGIN_THROTTLE_IP = 5
    settings.NEXUS_LOGIN_THROTTLE_PERIOD_S = 300.0


_addresses = itertools.count(1)


def _ip() -> str:
    # A client address no other request of this run uses, forwarded by the trusted proxy (the test client's peer
    # is 127.0.0.1).
    n = next(_addresses)
    return f"10.{n // 62500 % 250}.{n // 250 % 250}.{n % 250 + 1}"


def test_a_username_is_refused_after_three_failures_even_with_the_right_password(throttle, make_user, login):
    make_user("ann", PASSWORD, acme="viewer")
    ip = _ip()
    assert [login("ann", "wrong-password", HTTP_X_FORWARDED_FOR=ip).status_code for _ in range(3)] == [401] * 3
    # when the right password comes, from another address
    refused = login("ann", PASSWORD, HTTP_X_FORWARDED_FOR=_ip())
    # then
    assert refused.status_code == 429
    assert refused.json() == {
        "detail": "too many failed login attempts: at most 3 per 5 minutes per account and per client; retry in 100 s",
        "code": "rate_limited",
        "fields": {},
        "retry_after": 100,
    }
    assert refused.headers["Retry-After"] == "100"
    assert "access" not in refused.json()
    # and the same username in another case is the same account
    assert login("ANN", PASSWORD, HTTP_X_FORWARDED_FOR=_ip()).status_code == 429


def test_a_client_address_is_refused_after_five_failures_whatever_the_username(throttle, make_user, login):
    make_user("bob", PASSWORD, acme="viewer")
    ip = _ip()
    assert [login(f"nobody-{n}", "guess", HTTP_X_FORWARDED_FOR=ip).status_code for n in range(5)] == [401] * 5
    assert login("bob", PASSWORD, HTTP_X_FORWARDED_FOR=ip).status_code == 429
    # another address is not affected
    assert login("bob", PASSWORD, HTTP_X_FORWARDED_FOR=_ip()).status_code == 200


def test_a_successful_login_is_not_counted_as_a_failure(throttle, make_user, login):
    make_user("cyd", PASSWORD, acme="viewer")
    ip = _ip()
    assert login("cyd", "wrong", HTTP_X_FORWARDED_FOR=ip).status_code == 401
    assert login("cyd", "wrong", HTTP_X_FORWARDED_FOR=ip).status_code == 401
    assert login("cyd", PASSWORD, HTTP_X_FORWARDED_FOR=ip).status_code == 200
    # when: the third failure is still within the limit of 3, because the success was given back
    assert login("cyd", "wrong", HTTP_X_FORWARDED_FOR=ip).status_code == 401
    # then the fourth attempt is refused
    assert login("cyd", PASSWORD, HTTP_X_FORWARDED_FOR=ip).status_code == 429


def _oauth_request(*, client_id: str, ip: str, basic: bool):
    body = "grant_type=client_credentials"
    headers = {"REMOTE_ADDR": ip}
    if basic:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(f"{client_id}:wrong-secret".encode()).decode()
    else:
        body += f"&client_id={client_id}&client_secret=wrong-secret"
    request = RequestFactory().post("/oauth/token/", body, content_type="application/x-www-form-urlencoded", **headers)
    request.principal = None
    return request


@pytest.mark.parametrize("basic", [True, False], ids=["http-basic", "form-body"])
def test_the_oauth_token_endpoint_is_throttled_per_client_id(throttle, basic):
    from apps.audit.context import audit_context
    from apps.ratelimit.middleware import RateLimitMiddleware

    # given a token endpoint that refuses the secret (invalid_client), as django-oauth-toolkit does
    calls = []

    def token_view(request):
        calls.append(request.body)
        return JsonResponse({"error": "invalid_client"}, status=401)

    middleware = RateLimitMiddleware(token_view)
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    statuses = []
    for _ in range(4):
        ip = _ip()
        with audit_context(channel="web", ip=ip):
            statuses.append(middleware(_oauth_request(client_id=client_id, ip=ip, basic=basic)))
    # then the fourth attempt with that client id never reaches the view
    assert [response.status_code for response in statuses] == [401, 401, 401, 429]
    assert len(calls) == 3
    refused = json.loads(statuses[-1].content)
    assert refused["code"] == "rate_limited" and refused["retry_after"] == 100
    assert refused["detail"].startswith("too many failed OAuth2 token requests: at most 3 per 5 minutes")
