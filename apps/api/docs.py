"""The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): public unless NEXUS_API_DOCS_PUBLIC is false.

The schema holds no secret, and tools that import it by URL (client generators, Postman, schemathesis) send no
credential. Swagger UI's files come from drf-spectacular-sidecar under /static/ and its start script from
`/api/docs/?script`, so the page needs nothing from another origin and no inline script: the production
Content-Security-Policy (`script-src 'self'`) holds for it as for every other page. Its Authorize button takes an
API key or a bearer token for "Try it out".
"""

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny

from apps.api.permissions import IsAuthenticatedPrincipal


class _ServePermission:
    """The setting is read at each request (the tenant middleware lets these paths through the same way)."""

    def get_permissions(self):
        return [AllowAny()] if settings.NEXUS_API_DOCS_PUBLIC else [IsAuthenticatedPrincipal()]


class SchemaView(_ServePermission, SpectacularAPIView):
    pass


class DocsView(_ServePermission, SpectacularSwaggerSplitView):
    url_name = "schema"
