"""Production (NEXUS_ENV=production): explicit secret keys or no start, no debug, HTTPS-only cookies, HSTS, and
browser security headers, behind HAProxy terminating TLS (deploy/haproxy/haproxy.cfg sets X-Forwarded-Proto)."""

import os

from apps.ops.installation_keys import require_production_keys

# Before base: a missing or weak key must stop the process with a message naming the variable.
require_production_keys(secret_key=os.environ.get("NEXUS_SECRET_KEY", ""), jwt_key=os.environ.get("NEXUS_JWT_SIGNING_KEY", ""))

from nexus_site.settings.base import *  # noqa: E402,F403
from nexus_site.settings.base import API_MIDDLEWARE, MIDDLEWARE, env  # noqa: E402

DEBUG = False

# HAProxy overwrites X-Forwarded-Proto on every request (a client cannot choose it), so it tells HTTPS apart.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("NEXUS_SSL_REDIRECT", default=True)
# HAProxy's health checks and a Prometheus scraper on the internal network speak plain HTTP to the web processes.
SECURE_REDIRECT_EXEMPT = [r"^health/?$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("NEXUS_HSTS_SECONDS", default=31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("NEXUS_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("NEXUS_HSTS_PRELOAD", default=False)  # a browser-list commitment: the operator's call
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# The admin, the API docs and every JSON answer need nothing from another origin: Swagger UI at /api/docs/ loads
# its files from /static/ (drf-spectacular-sidecar) and its start script from /api/docs/?script, no inline script;
# its inline <style> and data: icons are what style-src and img-src allow here.
NEXUS_CONTENT_SECURITY_POLICY = env(
    "NEXUS_CONTENT_SECURITY_POLICY",
    default="default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
)
# Outermost: the answers of the middleware below (401, 429) carry the policy too.
MIDDLEWARE = ["apps.ops.middleware.ContentSecurityPolicyMiddleware", *MIDDLEWARE]
API_MIDDLEWARE = ["apps.ops.middleware.ContentSecurityPolicyMiddleware", *API_MIDDLEWARE]
