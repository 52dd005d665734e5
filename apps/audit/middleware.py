"""Per HTTP request: declare the audit context (channel, client ip, request id) and echo the request id."""

from apps.audit.context import REQUEST_ID_HEADER, client_ip, context_reset, context_set, request_id_from


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        request_id = request_id_from(meta.get("HTTP_X_REQUEST_ID"))
        token = context_set(
            channel="api" if request.path_info.startswith("/api/") else "web",
            ip=client_ip(meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR")),
            request_id=request_id,
        )
        try:
            response = self.get_response(request)
        finally:
            context_reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response
