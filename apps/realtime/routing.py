"""WebSocket routes under /ws/, wrapped in the token middleware: the "websocket" entry of the ASGI router."""

from channels.routing import URLRouter
from django.urls import re_path

from apps.realtime.auth import TokenAuthMiddleware
from apps.realtime.consumers import ExecutionConsumer, SessionConsumer, TenantConsumer

# The ignores: django-stubs type re_path's target as a Django view, while channels' URLRouter routes ASGI apps.
websocket_urlpatterns = [
    re_path(r"^ws/sessions/(?P<session_id>[A-Za-z0-9_]{1,40})/$", SessionConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"^ws/executions/(?P<run_id>[A-Za-z0-9_]{1,40})/$", ExecutionConsumer.as_asgi()),  # type: ignore[arg-type]
    re_path(r"^ws/tenant/$", TenantConsumer.as_asgi()),  # type: ignore[arg-type]
]


def websocket_application():
    return TokenAuthMiddleware(URLRouter(websocket_urlpatterns))
