"""Per request: authenticate the credential, choose the tenant (DESIGN §3) and switch to its schema."""

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import JsonResponse

from apps.accounts.credentials import credential_from_headers
from apps.accounts.selectors import principal_from_credential
from apps.core.errors import ApplicationError, NotAuthenticated
from apps.core.http import error_json
from apps.tenants.connection import current_schema, current_tenant, use_public, use_tenant
from apps.tenants.selectors import tenant_for_host

# Paths that answer without a credential: health for load balancers, the admin with its own login.
PUBLIC_PREFIXES = ("/health", "/admin/", "/static/", "/.well-known/")
# The OpenAPI schema and its docs page, exactly: public while NEXUS_API_DOCS_PUBLIC is true (read per request).
DOCS_PATHS = frozenset({"/api/schema/", "/api/docs/"})
# The login endpoints, exactly: they take a password, a refresh token or OAuth2 client credentials instead, and
# ignore any credential.
LOGIN_PATHS = frozenset(
    {"/api/v1/auth/token/", "/api/v1/auth/refresh/", "/oauth/token/", "/oauth/introspect/", "/oauth/revoke_token/"}
)
# Paths whose view checks the credential itself, because it may be no Nexus credential: /metrics takes the
# scraper's NEXUS_METRICS_TOKEN as well as a platform admin's credential (apps/ops/selectors.py).
SELF_AUTHENTICATED_PATHS = frozenset({"/metrics"})


def _nul_in(path_info: str, query_string: str) -> str | None:
    """`path` or `query` when the request line carries a NUL character (raw or percent-encoded): PostgreSQL
    stores none, so it would otherwise fail at the first query as a 500."""
    if "\x00" in path_info:
        return "path"
    if "%00" in query_string or "\x00" in query_string:
        return "query"
    return None


class TenantPrincipalMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # The schema is chosen below on every request; switching only when it differs from the one this
        # connection already has saves a `SET search_path` round trip per request.
        request.principal = None
        request.tenant = None
        meta = request.META
        where = _nul_in(request.path_info, meta.get("QUERY_STRING", ""))
        if where is not None:
            error = ApplicationError(
                f"the request {where} contains a NUL character", code="invalid_characters", fields={where: "contains NUL"}
            )
            return JsonResponse(error.as_dict(), status=400)
        raw = credential_from_headers(request.headers)
        if request.path_info in LOGIN_PATHS or request.path_info in SELF_AUTHENTICATED_PATHS:
            pass  # no principal, no tenant: these views check what they are given in the public schema
        elif raw:
            try:
                request.principal, request.tenant = principal_from_credential(raw)
            except ApplicationError as error:
                return error_json(error, status=401)
        elif not request.path_info.startswith(PUBLIC_PREFIXES) and not (
            request.path_info in DOCS_PATHS and settings.NEXUS_API_DOCS_PUBLIC
        ):
            return error_json(NotAuthenticated("authentication credentials were not provided"))
        else:
            try:
                request.tenant = tenant_for_host(host=request.get_host().split(":")[0])
            except DisallowedHost:
                request.tenant = None
        if request.tenant is not None and request.tenant.schema_name != "public":
            # The same schema name is not the same tenant: a tenant deleted and created again under its slug has
            # the old schema's name and a new id, and the services check the connection's tenant by id.
            on = current_tenant()
            if current_schema() != request.tenant.schema_name or on is None or on.pk != request.tenant.pk:
                use_tenant(request.tenant)
        elif current_schema() != "public":
            use_public()
        return self.get_response(request)
