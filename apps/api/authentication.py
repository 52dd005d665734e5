"""DRF authentication that reuses the principal the tenant middleware already resolved."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication


class PrincipalAuthentication(BaseAuthentication):
    def authenticate(self, request):
        principal = getattr(request, "principal", None)  # set by the tenant middleware on the Django request
        if principal is None:
            return None
        return (principal, None)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="nexus"'


class PrincipalAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = PrincipalAuthentication
    name = ["BearerAuth", "ApiKeyAuth"]

    def get_security_requirement(self, auto_schema):
        # Either header, not both: a list of requirements is an OR in OpenAPI, one requirement with two keys an AND.
        return [{name: []} for name in self.name]

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer <credential>`: an nxk_ API key, an OAuth2 access token from "
                "POST /oauth/token/ (client credentials), or the access token from POST /api/v1/auth/token/ (a JWT).",
            },
            {
                "type": "apiKey",
                "in": "header",
                "name": "X-API-Key",
                "description": "An nxk_ API key; wins over an Authorization header.",
            },
        ]
