"""WSGI entry point: request/response traffic (REST API, console, admin, health, metrics)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local")

application = get_wsgi_application()
