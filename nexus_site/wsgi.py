"""WSGI entry point: request/response traffic (REST API, console, admin, health, metrics).

`/api/` is served by a handler with a shorter middleware chain: requests there authenticate with a
bearer credential, so sessions, CSRF, messages and the session user (0.09 ms of CPU per request,
about 15% of an execute call) do nothing for them. Everything else gets the full chain.
"""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

from nexus_site.settings import settings_module

os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module())

site_application = get_wsgi_application()


class ApiWSGIHandler(WSGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        full_chain = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full_chain


api_application = ApiWSGIHandler()


def application(environ, start_response):
    if environ.get("PATH_INFO", "").startswith("/api/"):
        return api_application(environ, start_response)
    return site_application(environ, start_response)
