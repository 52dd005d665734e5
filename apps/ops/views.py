"""Operations endpoints: /health for load balancers and people (terse without credential, detailed for platform
admins; no tenant data), /metrics for Prometheus (platform operators only: apps/ops/selectors.py decides)."""

from django.http import HttpResponse, JsonResponse

from apps.accounts.credentials import credential_from_headers
from apps.audit.context import current_context
from apps.core.errors import ApplicationError
from apps.core.http import error_json, method_not_allowed
from apps.ops.metrics import metrics_exposition
from apps.ops.selectors import health_detailed, metrics_access
from apps.ops.services import health_check, health_summary


def health(request) -> JsonResponse:
    """The status for anyone (load balancers ask every 2 s: it must stay cheap and say nothing about the machines);
    the details for an operator (the tenant middleware has resolved the credential: a bad one is already a 401)."""
    detailed = health_detailed(principal=getattr(request, "principal", None), ip=current_context().ip)
    report = health_check() if detailed else health_summary()
    return JsonResponse(report, status=200 if report["status"] != "down" else 503)


def metrics(request) -> HttpResponse:
    if request.method != "GET":
        return method_not_allowed(request.method, allowed="GET")
    try:
        metrics_access(credential=credential_from_headers(request.headers), ip=current_context().ip)
    except ApplicationError as error:
        return error_json(error)
    body, content_type = metrics_exposition(accept=request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
