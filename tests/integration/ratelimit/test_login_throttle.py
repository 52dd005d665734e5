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


def _padded_login(client, username: str, password: str, *, padding: int, ip: str):
    body = json.dumps({"username": username + " " * padding, "password": password})
    return client.post("/api/v1/auth/token/", body, content_type="application/json", HTTP_X_FORWARDED_FOR=ip)


def test_fourteen_logins_padded_to_70_kb_are_413_and_never_reach_the_password_check(settings, limits, make_user, client):
    # given the default limits: 10 failures per username
    settings.NEXUS_LOGIN_THROTTLE_ACCOUNT = 10
    settings.NEXUS_LOGIN_THROTTLE_IP = 1000
    make_user("pam", PASSWORD, acme="viewer")
    # when: the attack of issue 11, one username with 70 KB of trailing spaces, 14 times
    responses = [_padded_login(client, "pam", f"guess-{n}", padding=70_000, ip=_ip()) for n in range(14)]
    # then every one is refused for its size, with the usual error shape
    assert [response.status_code for response in responses] == [413] * 14
    assert responses[0].json() == {
        "detail": "the request body is larger than 8192 bytes, the most this endpoint takes",
        "code": "body_too_large",
        "fields": {"body": "at most 8192 bytes"},
    }
    # and none was a guess: the account counted nothing, the right password logs in
    assert login_status(client, "pam", PASSWORD) == 200


def login_status(client, username: str, password: str) -> int:
    body = json.dumps({"username": username, "password": password})
    return client.post("/api/v1/auth/token/", body, content_type="application/json", HTTP_X_FORWARDED_FOR=_ip()).status_code


def test_padded_case_and_unicode_variants_of_a_username_share_one_counter(throttle, make_user, client):
    make_user("quin", PASSWORD, acme="viewer")
    # when three failures use three spellings of the name, padded but under the body cap
    statuses = [
        _padded_login(client, "quin", "wrong-1", padding=7_000, ip=_ip()).status_code,
        _padded_login(client, "  QUIN", "wrong-2", padding=10, ip=_ip()).status_code,
        _padded_login(client, "\uff31uin", "wrong-3", padding=0, ip=_ip()).status_code,  # fullwidth Q (NFKC: Q)
    ]
    # then the fourth attempt, right password and plain name, is refused
    assert statuses == [401, 401, 401]
    assert login_status(client, "quin", PASSWORD) == 429
    assert _padded_login(client, "Quin", PASSWORD, padding=3_000, ip=_ip()).status_code == 429


def test_a_repeated_form_field_counts_against_the_name_the_view_reads(throttle):
    from apps.audit.context import audit_context
    from apps.ratelimit.middleware import RateLimitMiddleware

    # given an OAuth2 token view that refuses the secret; django-oauth-toolkit reads the last client_id
    middleware = RateLimitMiddleware(lambda request: JsonResponse({"error": "invalid_client"}, status=401))
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    statuses = []
    for n in range(4):
        body = f"grant_type=client_credentials&client_id=decoy-{n}&client_id={client_id}&client_secret=wrong"
        ip = _ip()
        request = RequestFactory().post("/oauth/token/", body, content_type="application/x-www-form-urlencoded", REMOTE_ADDR=ip)
        request.principal = None
        with audit_context(channel="web", ip=ip):
            statuses.append(middleware(request).status_code)
    assert statuses == [401, 401, 401, 429]


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh/", "/oauth/token/", "/oauth/introspect/"])
def test_the_other_secret_taking_endpoints_refuse_large_bodies(client, path):
    big = "x" * 9_000
    if path.startswith("/oauth/"):
        form = f"grant_type=client_credentials&client_id={big}"
        response = client.post(path, form, content_type="application/x-www-form-urlencoded")
    else:
        response = client.post(path, json.dumps({"refresh": big}), content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


def test_a_body_longer_than_its_content_length_is_measured_as_read(throttle):
    """ASGI (daphne) hands Django the body a client streamed, whatever Content-Length said, or without one."""
    import io

    from django.core.handlers.asgi import ASGIRequest

    from apps.ratelimit.middleware import RateLimitMiddleware

    reached = []
    middleware = RateLimitMiddleware(lambda request: reached.append(request) or JsonResponse({}, status=401))
    body = json.dumps({"username": "ann" + " " * 70_000, "password": "guess"}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/v1/auth/token/",
        "headers": [(b"content-type", b"application/json")],  # chunked: no Content-Length
        "client": ("127.0.0.1", 5000),
    }
    request = ASGIRequest(scope, io.BytesIO(body))
    request.principal = None
    response = middleware(request)
    assert (response.status_code, reached) == (413, [])


def test_without_its_redis_the_login_throttle_fails_closed(throttle, settings, make_user, client, api):
    make_user("rex", PASSWORD, acme="viewer")
    settings.NEXUS_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    settings.NEXUS_RATE_LIMIT_RETRY_S = 2.0
    # when the right password comes while the throttle cannot be checked
    body = json.dumps({"username": "rex", "password": PASSWORD})
    response = client.post("/api/v1/auth/token/", body, content_type="application/json", HTTP_X_FORWARDED_FOR=_ip())
    # then the login is refused for now, and says when to come back
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert response.json() == {
        "detail": "logins are paused: the failed-login throttle cannot be checked right now; retry in 2 s",
        "code": "login_throttle_unavailable",
    }
    assert "access" not in response.json()
    # while ordinary rate limits fail open: an API key still works
    assert api().get("/api/v1/workflows/").status_code == 200


def test_without_its_redis_the_oauth_throttle_fails_open(throttle, settings):
    from apps.audit.context import audit_context
    from apps.ratelimit.middleware import RateLimitMiddleware

    settings.NEXUS_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"
    calls = []
    middleware = RateLimitMiddleware(lambda request: calls.append(1) or JsonResponse({"error": "invalid_client"}, status=401))
    ip = _ip()
    with audit_context(channel="web", ip=ip):
        response = middleware(_oauth_request(client_id="any-client", ip=ip, basic=True))
    assert (response.status_code, calls) == (401, [1])
