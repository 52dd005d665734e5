"""The Python client's transport rules, against scripted responses: rate limits, retries, OAuth2 token caching."""

import base64
import email.utils
import time
from urllib.parse import parse_qs

import httpx
import pytest
from nexus_client import (
    AuthenticationError,
    ClientCredentials,
    NexusClient,
    NexusConnectionError,
    RateLimitError,
    ServerError,
    UnexpectedResponseError,
)
from nexus_client import auth as auth_module
from nexus_client import client as client_module

WORKFLOWS = {"count": 0, "results": []}


class Script:
    """A transport that answers from a list, in order, and records every request."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


@pytest.fixture
def sleeps(monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    return slept


def _client(script: Script, **options) -> NexusClient:
    options.setdefault("api_key", "nxk_test_key")
    return NexusClient("http://nexus.test", transport=httpx.MockTransport(script), **options)


def _limited(retry_after: str = "7", **headers) -> httpx.Response:
    return httpx.Response(
        429,
        json={"detail": "rate limit exceeded: 2 requests per minute", "code": "rate_limited"},
        headers={"Retry-After": retry_after, **headers},
    )


def test_a_429_is_a_rate_limit_error_with_the_headers_parsed(sleeps):
    script = Script(_limited("7", **{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "7"}))
    with pytest.raises(RateLimitError) as limited:
        _client(script).workflows.list()
    error = limited.value
    assert (error.status, error.code, error.retry_after) == (429, "rate_limited", 7.0)
    assert (error.limit, error.remaining, error.reset) == (2, 0, 7.0)
    assert error.detail == "rate limit exceeded: 2 requests per minute"
    assert sleeps == [] and len(script.requests) == 1


def test_retry_after_as_an_http_date_is_read_as_seconds_from_now():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(RateLimitError) as limited:
        _client(Script(_limited(when))).workflows.list()
    assert 28 <= limited.value.retry_after <= 30
    assert limited.value.limit is None and limited.value.reset is None


def test_with_retries_a_429_is_sent_again_after_retry_after(sleeps):
    script = Script(_limited("2"), _limited("3"), httpx.Response(200, json=WORKFLOWS))
    page = _client(script, max_retries=2).workflows.list()
    assert page.count == 0
    assert sleeps == [2.0, 3.0]
    assert [r.method for r in script.requests] == ["GET", "GET", "GET"]


def test_a_post_is_retried_on_429_too_with_the_same_body(sleeps):
    done = {"execution_id": "run_1", "status": "completed", "result": {"message": "hi"}}
    script = Script(_limited("1"), httpx.Response(200, json=done))
    result = _client(script, max_retries=1).workflows.execute("hello", {"name": "x"})
    assert result.result == {"message": "hi"}
    assert script.requests[0].content == script.requests[1].content
    assert sleeps == [1.0]


def test_retries_stop_at_max_retries_and_at_max_retry_wait(sleeps):
    with pytest.raises(RateLimitError):
        _client(Script(_limited("1"), _limited("1")), max_retries=1).workflows.list()
    assert sleeps == [1.0]
    sleeps.clear()
    with pytest.raises(RateLimitError) as too_long:
        _client(Script(_limited("120")), max_retries=5, max_retry_wait=60).workflows.list()
    assert too_long.value.retry_after == 120.0 and sleeps == []


def test_a_get_is_retried_on_connection_errors_and_gateway_errors(sleeps):
    script = Script(
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.Response(503, json={"detail": "no server", "code": "unavailable"}),
        httpx.Response(200, json=WORKFLOWS),
    )
    assert _client(script, max_retries=3).workflows.list().count == 0
    assert len(sleeps) == 3 and all(0 < s <= client_module.BACKOFF_MAX_SECONDS for s in sleeps)


def test_a_post_that_may_have_reached_the_server_is_not_sent_again(sleeps):
    script = Script(httpx.ReadTimeout("slow"))
    with pytest.raises(NexusConnectionError) as lost:
        _client(script, max_retries=3).workflows.execute("hello", {"name": "x"})
    assert lost.value.status is None and "ReadTimeout" in lost.value.detail
    assert len(script.requests) == 1 and sleeps == []
    refused = Script(httpx.ConnectError("refused"), httpx.Response(201, json={"id": "ses_1"}))
    assert _client(refused, max_retries=1).sessions.create("ada").id == "ses_1"


def test_without_retries_failures_raise_at_once(sleeps):
    with pytest.raises(ServerError) as failed:
        _client(Script(httpx.Response(503, json={"detail": "down", "code": "unavailable"}))).workflows.list()
    assert (failed.value.status, failed.value.code) == (503, "unavailable")
    with pytest.raises(NexusConnectionError):
        _client(Script(httpx.ConnectError("refused"))).workflows.list()
    assert sleeps == []


def test_a_body_that_is_not_json_is_named_clearly():
    script = Script(httpx.Response(200, text="<html>proxy</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(UnexpectedResponseError, match="not JSON \\(text/html\\)"):
        _client(script).workflows.list()


def test_a_response_missing_a_documented_field_names_it():
    with pytest.raises(UnexpectedResponseError, match="Workflow: the response has no 'slug' field"):
        _client(Script(httpx.Response(200, json={"id": "wf_1"}))).workflows.get("wf_1")


def _token(value: str, expires_in: int = 3600) -> httpx.Response:
    return httpx.Response(200, json={"access_token": value, "token_type": "Bearer", "expires_in": expires_in})


def _oauth_client(script: Script) -> NexusClient:
    return _client(script, api_key=None, oauth=ClientCredentials("cid", "secret", scope="workflows:read"))


def test_oauth_fetches_a_token_with_basic_auth_once_and_caches_it():
    script = Script(_token("tok-1"), httpx.Response(200, json=WORKFLOWS), httpx.Response(200, json=WORKFLOWS))
    client = _oauth_client(script)
    client.workflows.list()
    client.workflows.list()
    grant, first, second = script.requests
    assert (grant.method, grant.url.path) == ("POST", "/oauth/token/")
    assert grant.headers["Authorization"] == "Basic " + base64.b64encode(b"cid:secret").decode()
    assert parse_qs(grant.content.decode()) == {"grant_type": ["client_credentials"], "scope": ["workflows:read"]}
    assert first.headers["Authorization"] == second.headers["Authorization"] == "Bearer tok-1"


def test_oauth_refetches_shortly_before_expiry(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(auth_module.time, "monotonic", lambda: now[0])
    listed = httpx.Response(200, json=WORKFLOWS)
    script = Script(_token("tok-1", 600), listed, _token("tok-2", 600), listed)
    client = _oauth_client(script)
    client.workflows.list()
    now[0] += 600 - auth_module.EXPIRY_MARGIN_SECONDS  # within the margin: refetch before it expires
    client.workflows.list()
    assert [r.url.path for r in script.requests] == ["/oauth/token/", "/api/v1/workflows/", "/oauth/token/", "/api/v1/workflows/"]
    assert script.requests[3].headers["Authorization"] == "Bearer tok-2"


def test_oauth_refetches_once_when_the_api_refuses_the_token():
    refused = httpx.Response(401, json={"detail": "token revoked", "code": "invalid_credentials"})
    script = Script(_token("tok-1"), refused, _token("tok-2"), httpx.Response(200, json=WORKFLOWS))
    assert _oauth_client(script).workflows.list().count == 0
    assert script.requests[3].headers["Authorization"] == "Bearer tok-2"

    again = Script(_token("tok-1"), refused, _token("tok-2"), refused)
    with pytest.raises(AuthenticationError) as still:
        _oauth_client(again).workflows.list()
    assert still.value.code == "invalid_credentials" and len(again.requests) == 4


def test_a_refused_client_is_an_authentication_error():
    script = Script(httpx.Response(401, json={"error": "invalid_client", "error_description": "unknown client"}))
    with pytest.raises(AuthenticationError) as refused:
        _oauth_client(script).workflows.list()
    assert (refused.value.status, refused.value.code, refused.value.detail) == (401, "invalid_client", "unknown client")
    bad_grant = Script(httpx.Response(400, json={"error": "invalid_scope"}))
    with pytest.raises(AuthenticationError) as scope:
        _oauth_client(bad_grant).workflows.list()
    assert scope.value.code == "invalid_scope"


def test_the_client_refuses_two_credentials_and_negative_retries():
    with pytest.raises(ValueError, match="not both"):
        NexusClient("http://x", api_key="nxk_a", oauth=ClientCredentials("c", "s"))
    with pytest.raises(ValueError, match="max_retries"):
        NexusClient("http://x", max_retries=-1)


def test_tenant_and_path_segments_are_sent_safely():
    script = Script(httpx.Response(404, json={"detail": "no such workflow", "code": "workflow_not_found"}))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the request is what this test checks
        _client(script, tenant="globex").workflows.get("a/../b")
    [request] = script.requests
    assert request.headers["X-Nexus-Tenant"] == "globex"
    assert request.url.raw_path == b"/api/v1/workflows/a%2F..%2Fb/"
