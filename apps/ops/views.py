"""Operations endpoints: /health for load balancers and people (terse without credential, detailed for platform
admins; no tenant data), /metrics for Prometheus (platform operators only)."""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse, JsonResponse

from apps.accounts.selectors import credential_from_headers, principal_from_credential
from apps.audit.context import current_context
from apps.audit.recorder import audit_denied
from apps.core.errors import ApplicationError
from apps.ops.metrics import metrics_exposition
from apps.ops.services import health_check, health_summary


def health(request) -> JsonResponse:
    """The status for anyone (load balancers ask every 2 s: it must stay cheap and say nothing about the machines);
    host names, pids, latencies, errors and worker names for a platform admin's credential (the tenant middleware
    has resolved it: a bad one is already a 401), or a caller on this machine when NEXUS_METRICS_ALLOW_LOOPBACK."""
    principal = getattr(request, "principal", None)
    operator = (principal is not None and principal.is_platform_admin) or (
        principal is None and settings.NEXUS_METRICS_ALLOW_LOOPBACK and _loopback(current_context().ip)
    )
    report = health_check() if operator else health_summary()
    return JsonResponse(report, status=200 if report["status"] != "down" else 503)


def _unauthorized(detail: str) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": "not_authenticated"}, status=401)
    response["WWW-Authenticate"] = 'Bearer realm="nexus"'
    return response


def _loopback(ip: str | None) -> bool:
    return ip is not None and ipaddress.ip_address(ip).is_loopback


def _metrics_refusal(request) -> JsonResponse | None:
    """None when the caller may read the metrics, else the answer it gets.

    The figures span every tenant (tenant slugs label them), so a tenant's own credential is refused whatever
    its role; accepted are a platform admin's credential, the scrape token NEXUS_METRICS_TOKEN (Prometheus holds
    no Nexus credential), and, only when NEXUS_METRICS_ALLOW_LOOPBACK is on, a caller on this machine. That
    client address is the one the proxy forwarded, never the proxy's own loopback address.
    """
    meta = request.META
    raw = credential_from_headers(authorization=meta.get("HTTP_AUTHORIZATION", ""), api_key=meta.get("HTTP_X_API_KEY", ""))
    if raw:
        token = settings.NEXUS_METRICS_TOKEN
        if token and hmac.compare_digest(raw.encode(), token.encode()):
            return None
        try:
            principal, _ = principal_from_credential(raw)
        except ApplicationError as error:
            return _unauthorized(error.detail)
        if principal.is_platform_admin:
            return None
        reason = "metrics cover every tenant: only platform admins and the metrics token may read them"
        audit_denied(principal=principal, permission="metrics.read", tenant_id=principal.tenant_id, reason=reason)
        return JsonResponse({"detail": reason, "code": "permission_denied"}, status=403)
    if settings.NEXUS_METRICS_ALLOW_LOOPBACK and _loopback(current_context().ip):
        return None
    return _unauthorized("authentication credentials were not provided")


def metrics(request) -> HttpResponse:
    if request.method != "GET":
        response = JsonResponse({"detail": f"method {request.method} not allowed", "code": "method_not_allowed"}, status=405)
        response["Allow"] = "GET"
        return response
    refused = _metrics_refusal(request)
    if refused is not None:
        return refused
    body, content_type = metrics_exposition(accept=request.META.get("HTTP_ACCEPT", ""))
    return HttpResponse(body, content_type=content_type)
