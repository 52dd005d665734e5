"""Per HTTP request, before any view: an authenticated caller counts against its credential's and its tenant's
limits; a password or client-secret exchange counts against its failed-attempt limits. A refused request gets
429 and reaches no view, so it changes nothing.

Runs right after TenantPrincipalMiddleware (which sets `request.principal`) in both middleware chains.
Unauthenticated paths (health, static files, admin login) are not counted.
"""

import base64
import binascii
import json
from urllib.parse import parse_qs, unquote_plus

from django.http import HttpRequest, JsonResponse

from apps.audit.context import current_context
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
# An account name is read from bodies up to this size; a larger body still counts against the client's ip.
_MAX_BODY_READ = 64 * 1024


def _refused(decision: Decision) -> JsonResponse:
    response = JsonResponse(refusal(decision).as_dict(), status=429)
    for name, value in decision.headers().items():
        response[name] = value
    # Not one "Too Many Requests" log line each (django.request): a client hammering past its limit would flood
    # the log. Refusals are counted in nexus_rate_limited_total instead.
    response._has_been_logged = True
    return response


def _account(request: HttpRequest, field: str) -> str | None:
    """The username (JSON login) or client id (OAuth2: HTTP Basic, or the form body) the request tries."""
    if field == "client_id":
        scheme, _, encoded = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() == "basic" and encoded:
            try:
                client_id = base64.b64decode(encoded, validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                client_id = ""
            if client_id:
                return unquote_plus(client_id)  # RFC 6749 §2.3.1: form-encoded before base64
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None
    if not 0 < length <= _MAX_BODY_READ:
        return None
    body = request.body  # kept by Django: the view reads it again
    if request.content_type == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode(errors="replace")).get(field)
        return values[0] if values else None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get(field) if isinstance(data, dict) else None
    return value if isinstance(value, str) and value else None


class RateLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        principal = request.principal
        if principal is None:
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
        limits = attempt_limits(scope=scope, account=_account(request, field), ip=current_context().ip)
        decision = limiter().check(limits)
        if decision is not None and not decision.allowed:
            return _refused(decision)
        response = self.get_response(request)
        if decision is not None and (response.status_code < 400 or response.status_code >= 500):
            limiter().refund(limits)
        return response
