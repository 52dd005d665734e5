"""The OpenAPI schema (/api/schema/) and Swagger UI (/api/docs/): public unless NEXUS_API_DOCS_PUBLIC is false.

The schema holds no secret, and tools that import it by URL (client generators, Postman, schemathesis) send no
credential. Swagger UI's files come from drf-spectacular-sidecar under /static/ and its start script from
`/api/docs/?script`, so the page needs nothing from another origin and no inline script: the production
Content-Security-Policy (`script-src 'self'`) holds for it as for every other page. Its Authorize button takes an
API key or a bearer token for "Try it out".
"""

from typing import Any, ClassVar

from django.conf import settings
from django.utils import translation
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from apps.api.permissions import IsAuthenticatedPrincipal


class _ServePermission:
    """The setting is read at each request (the tenant middleware lets these paths through the same way)."""

    def get_permissions(self):
        return [AllowAny()] if settings.NEXUS_API_DOCS_PUBLIC else [IsAuthenticatedPrincipal()]


class SchemaView(_ServePermission, SpectacularAPIView):
    """Built once per process, version and language: with `public` the schema follows from the code alone, not
    from who asks, and building it costs about a second of CPU, which any anonymous caller could otherwise spend
    at will now that the schema is public."""

    built: ClassVar[dict[tuple[str | None, str | None], Any]] = {}

    def _get_schema_response(self, request):
        version = self.api_version or request.version or self._get_version_parameter(request)
        key = (version, translation.get_language())
        if key not in self.built:
            generator = self.generator_class(urlconf=self.urlconf, api_version=version, patterns=self.patterns)
            self.built[key] = generator.get_schema(request=request, public=self.serve_public)
        filename = self._get_filename(request, version)
        return Response(data=self.built[key], headers={"Content-Disposition": f'inline; filename="{filename}"'})


class DocsView(_ServePermission, SpectacularSwaggerSplitView):
    url_name = "schema"
