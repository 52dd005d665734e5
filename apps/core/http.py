"""The JSON answers every HTTP door gives outside DRF: an ApplicationError (with its challenge or retry header)
and a method the endpoint does not take."""

from django.http import JsonResponse

from apps.core.errors import ApplicationError, RateLimited

# What a 401 says to come back with: a Nexus credential as a bearer token (or X-API-Key).
CHALLENGE = 'Bearer realm="nexus"'


def error_json(error: ApplicationError, *, status: int | None = None) -> JsonResponse:
    """`error` as `{"detail", "code", "fields"}` with its status (or `status`), `WWW-Authenticate` on a 401 and
    `Retry-After` on a 429."""
    response = JsonResponse(error.as_dict(), status=status or error.status)
    if response.status_code == 401:
        response["WWW-Authenticate"] = CHALLENGE
    elif isinstance(error, RateLimited):
        response["Retry-After"] = str(error.retry_after)
    return response


def method_not_allowed(method: str, *, allowed: str) -> JsonResponse:
    response = JsonResponse({"detail": f"method {method} not allowed", "code": "method_not_allowed"}, status=405)
    response["Allow"] = allowed
    return response
