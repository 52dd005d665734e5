"""Health endpoint for load balancers and people: no credential needed, no tenant data shown."""

from django.http import JsonResponse

from apps.ops.services import health_check


def health(request) -> JsonResponse:
    report = health_check()
    return JsonResponse(report, status=200 if report["status"] != "down" else 503)
