"""ASGI entry point served by daphne: WebSockets and MCP (issues 5 and 6 mount them here)."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local")
# Django under ASGI leaks a persistent connection per request (STACK.md): never keep them here.
os.environ["NEXUS_CONN_MAX_AGE"] = "0"

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi = get_asgi_application()

application = ProtocolTypeRouter({"http": django_asgi})
