"""Per HTTP request, before any view: an authenticated caller counts against its credential's and its tenant's
limits; a password or client-secret exchange counts against its failed-attempt limits. A refused request gets
429 and reaches no view, so it changes nothing.

Runs right after TenantPrincipalMiddleware (which sets `request.principal`) in both middleware chains.
Unauthenticated paths (health, static files, admin login) are not counted.

The endpoints that take a password, a refresh token or a client secret refuse a body over
NEXUS_AUTH_MAX_BODY_BYTES with 413 before anything parses it: no legitimate request comes near it, and a padded
body can neither hide the account it tries nor cost us the parsing.

Fail closed for logins: when the login throttle cannot be checked (its Redis down or slower than
NEXUS_RATE_LIMIT_TIMEOUT_S), POST /api/v1/auth/token/ answers 503 with Retry-After instead of checking the
password. Failing open would hand whoever can slow Redis down (or waits for an outage) unlimited password guesses
against every account, and passwords are chosen by people, so guessable. The cost is that nobody logs in during
the outage; tokens already issued, API keys and OAuth2 tokens keep working, because ordinary rate limits (a quota,
not a guard) and the OAuth2 endpoints keep failing open: a client secret is 128 random characters, which no
number of guesses finds, so refusing every integration's token during an outage would buy nothing.
"""

import base64
import binascii
import json
import math
from urllib.parse import unquote_plus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse, QueryDict

from apps.audit.context import current_context
from apps.core.errors import ApplicationError
from apps.ratelimit.limiter import Decision, limiter
from apps.ratelimit.policy import attempt_limits, principal_check, refusal

# The endpoints that take a secret, by path: the `scope` their failures count under and where the account is.
# The OAuth2 endpoints all authenticate the client (id and secret), so all of them count its failures together.
ATTEMPT_PATHS = {
    "/api/v1/auth/token/": ("login", "username"),
    "/oauth/token/": ("oauth", "client_id"),
    "/oauth/introspect/": ("oauth", "client_id"),
    "/oauth/revoke_token/": ("oauth", "client_id"),
}
# The scopes whose throttle fails closed (see the module docstring).
FAIL_CLOSED_SCOPES = frozenset({"login"})
# Every endpoint that takes a secret in its body: at most NEXUS_AUTH_MAX_BODY_BYTES, whatever the method.
AUTH_BODY_PATHS = frozenset(ATTEMPT_PATHS) | {"/api/v1/auth/refresh/"}


def _refused(decision: Decision) -> JsonResponse:
    response = JsonResponse(refusal(decision).as_dict(), status=429)
    for name, value in decision.headers().items():
        response[name] = value
    # Not one "Too Many Requests" log line each (django.request): a client hammering past its limit would flood
    # the log. Refusals are counted in nexus_rate_limited_total instead.
    response._has_been_logged = True  # type: ignore[attr-defined]  # Django's private flag (django.utils.log), not in the stubs
    return response


def _too_large(limit: int) -> JsonResponse:
    error = ApplicationError(
        f"the request body is larger than {limit} bytes, the most this endpoint takes",
        code="body_too_large",
        fields={"body": f"at most {limit} bytes"},
    )
    return JsonResponse(error.as_dict(), status=413)


def _oversized(request: HttpRequest) -> JsonResponse | None:
    """413 when the body is over the cap, by its Content-Length or by what was actually sent (a body without a
    length, chunked, or longer than it said on ASGI): never parsed, never counted against an account."""
    limit = settings.NEXUS_AUTH_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _too_large(limit)
    try:
        body = request.body  # kept by Django: the view reads it again
    except RequestDataTooBig:  # Django's own cap (DATA_UPLOAD_MAX_MEMORY_SIZE), hit before reading it all
        return _too_large(limit)
    return _too_large(limit) if len(body) > limit else None


def _unavailable() -> JsonResponse:
    retry_after = max(1, math.ceil(settings.NEXUS_RATE_LIMIT_RETRY_S))
    error = ApplicationError(
        f"logins are paused: the failed-login throttle cannot be checked right now; retry in {retry_after} s",
        code="login_throttle_unavailable",
    )
    response = JsonResponse(error.as_dict(), status=503)
    response["Retry-After"] = str(retry_after)
    return response


def _account(request: HttpRequest, field: str) -> str | None:
    """The username (JSON login) or client id (OAuth2: HTTP Basic, or the form body) the request tries, read
    as the view will read it: the last of repeated form fields (QueryDict), the last of repeated JSON keys, a
    JSON number as its text (DRF's CharField)."""
    if field == "client_id":
        scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                client_id = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                client_id = ""
            if client_id:
                return unquote_plus(client_id)  # RFC 6749 §2.3.1: form-encoded before base64
    body = request.body  # at most NEXUS_AUTH_MAX_BODY_BYTES (checked before)
    if not body:
        return None
    if request.content_type == "application/x-www-form-urlencoded":
        return QueryDict(body, encoding=request.encoding).get(field) or None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get(field) if isinstance(data, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value if isinstance(value, str) and value else None


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        principal = request.principal
        if principal is None:
            if request.path_info in AUTH_BODY_PATHS:
                refused = _oversized(request)
                if refused is not None:
                    return refused
                attempt = ATTEMPT_PATHS.get(request.path_info)
                if attempt is not None and request.method == "POST":
                    return self._attempt(request, *attempt)
            return self.get_response(request)
        decision = principal_check(principal)
        if decision is None:
            return self.get_response(request)
        if not decision.allowed:
            return _refused(decision)
        response = self.get_response(request)
        response["RateLimit-Limit"] = str(decision.limit)
        response["RateLimit-Remaining"] = str(decision.remaining)
        response["RateLimit-Reset"] = str(decision.reset_s)
        return response

    def _attempt(self, request: HttpRequest, scope: str, field: str):
        """Every attempt is charged up front, so concurrent guesses cannot overrun the limit; one that succeeds
        (or fails on our side, 5xx) is given back, so only failures stay counted."""
        account = _account(request, field)
        limits = attempt_limits(scope=scope, account=account, ip=current_context().ip)
        decision = limiter().check(limits)
        if decision is None and scope in FAIL_CLOSED_SCOPES:
            return _unavailable()
        if decision is not None and not decision.allowed:
            return _refused(decision)
        response = self.get_response(request)
        if decision is not None and (response.status_code < 400 or response.status_code >= 500):
            limiter().refund(limits)
        return response
