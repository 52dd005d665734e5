"""The protected-resource metadata document as a Django view (public: it names no tenant and holds no secret)."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from apps.mcp_bridge.metadata import base_url, protected_resource_metadata


@require_GET
def protected_resource(request):
    base = base_url(scheme=request.scheme, host=request.get_host())
    response = JsonResponse(protected_resource_metadata(base))
    response["Cache-Control"] = "public, max-age=3600"
    response["Access-Control-Allow-Origin"] = "*"
    return response
