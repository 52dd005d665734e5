"""HTTP requests: events they cause carry source `api` (the REST API) or `web` (console, admin)."""

from apps.events.origin import origin_reset, origin_set


class EventOriginMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = origin_set(source="api" if request.path_info.startswith("/api/") else "web")
        try:
            return self.get_response(request)
        finally:
            origin_reset(token)
