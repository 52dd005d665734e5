"""Top-level URL map: health, the REST API and its schema, the OAuth2 endpoints, the admin."""

from django.contrib import admin
from django.urls import include, path

from apps.api import oauth
from apps.mcp_bridge.views import protected_resource

urlpatterns = [
    path("api/", include("apps.api.urls")),
    path("oauth/token/", oauth.TokenView.as_view()),
    path("oauth/introspect/", oauth.IntrospectView.as_view()),
    path("oauth/revoke_token/", oauth.RevokeView.as_view()),
    path("", include("apps.ops.urls")),
    path("admin/", admin.site.urls),
    # RFC 9728 metadata for the MCP endpoint: here, because the proxy sends only /mcp and /ws/ to the ASGI process.
    path(".well-known/oauth-protected-resource", protected_resource),
    path(".well-known/oauth-protected-resource/mcp", protected_resource),
]
