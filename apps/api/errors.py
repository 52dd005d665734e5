"""Every API error as `{"detail", "code", "fields"}` with the right status."""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError, RateLimited
from apps.core.http import CHALLENGE


def flatten_errors(data, prefix: str = "") -> dict[str, str]:
    """DRF's nested validation errors as `{"field.path[i]": "reason"}`."""
    if isinstance(data, dict):
        out: dict[str, str] = {}
        for key, value in data.items():
            out.update(flatten_errors(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list):
        if all(not isinstance(item, (dict, list)) for item in data):
            return {prefix or "non_field_errors": "; ".join(str(item) for item in data)}
        out = {}
        for index, item in enumerate(data):
            out.update(flatten_errors(item, f"{prefix}[{index}]"))
        return out
    return {prefix or "non_field_errors": str(data)}


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        response = Response(exc.as_dict(), status=exc.status)
        if exc.status == 401:
            response["WWW-Authenticate"] = CHALLENGE
        elif isinstance(exc, RateLimited):
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, Http404):
        return Response({"detail": "not found", "code": "not_found"}, status=404)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": "invalid request", "code": "invalid", "fields": flatten_errors(exc.detail)}
    elif isinstance(exc, exceptions.ParseError):
        response.data = {"detail": str(exc.detail), "code": "malformed_json"}
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(exc, "default_code", "error")
        response.data = {"detail": str(detail), "code": code}
    return response
