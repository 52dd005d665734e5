"""All Nexus settings, read from the environment through one django-environ Env."""

import warnings
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env("NEXUS_SECRET_KEY")
DEBUG = env.bool("NEXUS_DEBUG", default=False)
ALLOWED_HOSTS = env.list("NEXUS_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", ".localhost"])

NEXUS_VERSION = "0.1.0"
NEXUS_HOST = env("NEXUS_HOST", default="127.0.0.1")
NEXUS_PORT = env.int("NEXUS_PORT", default=8000)
NEXUS_DATA_DIR = Path(env("NEXUS_DATA_DIR", default=str(BASE_DIR / "var")))
NEXUS_NODE_ID = env("NEXUS_NODE_ID", default="")
NEXUS_REGION = env("NEXUS_REGION", default="local")
# Runs of pure, CPU-light workflows may execute in the web process when the caller waits (DESIGN §4).
NEXUS_INLINE_FAST_PATH = env.bool("NEXUS_INLINE_FAST_PATH", default=True)
NEXUS_INLINE_BUDGET_S = env.float("NEXUS_INLINE_BUDGET_S", default=0.25)
# How long a waiting caller is kept before it gets 202 and the run id.
NEXUS_WAIT_TIMEOUT_S = env.float("NEXUS_WAIT_TIMEOUT_S", default=30.0)
# A waiting caller holds one of the web process's threads (`nexus up` hands NEXUS_WEB_THREADS to granian as
# --blocking-threads). Past either cap a wait is not taken: the caller gets 202 and the run id at once, so
# slow runs can never occupy every thread. The default leaves one thread free (two from five threads on).
NEXUS_WEB_THREADS = env.int("NEXUS_WEB_THREADS", default=3)
NEXUS_WAIT_MAX_PER_PROCESS = env.int(
    "NEXUS_WAIT_MAX_PER_PROCESS", default=max(1, NEXUS_WEB_THREADS - (1 if NEXUS_WEB_THREADS <= 4 else 2))
)
# Waits of one tenant at once across every process (web and MCP), leased in Redis for NEXUS_WAIT_TIMEOUT_S plus
# a margin so a killed process frees its slots.
NEXUS_WAIT_MAX_PER_TENANT = env.int("NEXUS_WAIT_MAX_PER_TENANT", default=4)
if NEXUS_WAIT_MAX_PER_PROCESS < 0 or NEXUS_WAIT_MAX_PER_TENANT < 0:
    raise ImproperlyConfigured("NEXUS_WAIT_MAX_PER_PROCESS and NEXUS_WAIT_MAX_PER_TENANT must be 0 or more")
NEXUS_ENGINE_LIMITS = {
    "max_nodes": env.int("NEXUS_MAX_NODES", default=200),
    "max_payload_bytes": env.int("NEXUS_MAX_PAYLOAD_BYTES", default=1_000_000),
    "max_run_seconds": env.float("NEXUS_MAX_RUN_SECONDS", default=300.0),
    "max_delay_seconds": env.float("NEXUS_MAX_DELAY_SECONDS", default=60.0),
    "max_parallel_nodes": env.int("NEXUS_MAX_PARALLEL_NODES", default=8),
    "max_subworkflow_depth": env.int("NEXUS_MAX_SUBWORKFLOW_DEPTH", default=3),
    "max_template_iterations": env.int("NEXUS_MAX_TEMPLATE_ITERATIONS", default=100_000),
    "max_http_response_bytes": env.int("NEXUS_MAX_HTTP_RESPONSE_BYTES", default=1_000_000),
    # The http_request node refuses loopback, private and link-local targets (SSRF) unless allowed here.
    "allow_private_network": env.bool("NEXUS_HTTP_ALLOW_PRIVATE", default=False),
    "http_allowed_hosts": tuple(env.list("NEXUS_HTTP_ALLOWED_HOSTS", default=[])),
}
NEXUS_DEFAULT_TENANT = env("NEXUS_TENANT", default="default")
# Per-process caches on the request hot path. A revoked key, a suspended tenant or a new deployment
# takes effect at once in the process that made the change and within this many seconds everywhere.
NEXUS_AUTH_CACHE_S = env.float("NEXUS_AUTH_CACHE_S", default=2.0)
NEXUS_DEPLOYMENT_CACHE_S = env.float("NEXUS_DEPLOYMENT_CACHE_S", default=2.0)
# Quotas and isolation (apps/quotas, apps/runs/queues.py). Execution quotas count per calendar "month" or
# "day" (UTC). A process re-reads a cached tenant's quotas and isolation at most this often.
NEXUS_QUOTA_PERIOD = env.str("NEXUS_QUOTA_PERIOD", default="month")
if NEXUS_QUOTA_PERIOD not in ("month", "day"):
    raise ImproperlyConfigured("NEXUS_QUOTA_PERIOD must be 'month' or 'day'")
NEXUS_TENANT_LIMITS_CACHE_S = env.float("NEXUS_TENANT_LIMITS_CACHE_S", default=5.0)
# Runs of one strict tenant executing at once across the workers, unless the tenant sets max_concurrent_runs;
# a worker's slot is a lease renewed while the run lives, so a killed worker's slot frees itself.
NEXUS_TENANT_CONCURRENCY = env.int("NEXUS_TENANT_CONCURRENCY", default=2)
NEXUS_TENANT_SLOT_LEASE_S = env.float("NEXUS_TENANT_SLOT_LEASE_S", default=30.0)
NEXUS_TENANT_SLOT_RETRY_S = env.float("NEXUS_TENANT_SLOT_RETRY_S", default=1.0)
NEXUS_TENANT_SLOT_RETRY_MAX_S = env.float("NEXUS_TENANT_SLOT_RETRY_MAX_S", default=60.0)
# How often each worker looks for strict tenants' queues to consume (new tenants, deleted ones).
NEXUS_QUEUE_FOLLOW_S = env.float("NEXUS_QUEUE_FOLLOW_S", default=5.0)
# New tenant schemas are replayed from a dump of a kept-migrated template schema (apps/tenants/cloning.py);
# off, every new schema is migrated instead. NEXUS_PG_DUMP names the pg_dump binary when it is not found.
NEXUS_TENANT_CLONING = env.bool("NEXUS_TENANT_CLONING", default=True)
NEXUS_TENANT_TEMPLATE_SCHEMA = env("NEXUS_TENANT_TEMPLATE_SCHEMA", default="tenant_template")
NEXUS_PG_DUMP = env("NEXUS_PG_DUMP", default="")
# MCP at /mcp (apps/mcp_bridge): the Host (and browser Origin) values it answers, against DNS rebinding.
# Django's patterns: an exact name, ".localhost" for tenant subdomains, "*" for any.
# Sessions (apps/nexus_sessions) expire after this many idle minutes; WebSocket pings (daphne) every HEARTBEAT_S.
NEXUS_SESSION_IDLE_MINUTES = env.int("NEXUS_SESSION_IDLE_MINUTES", default=60)
NEXUS_WS_HEARTBEAT_S = env.int("NEXUS_WS_HEARTBEAT_S", default=20)
# Every WebSocket's credential is resolved again this often (an expired token, a revoked key, a removed member
# or a suspended tenant closes it; revocations close it at once too), and at most this many sockets may be
# open per credential holder (key, application, or user in a tenant) across all daphne processes; 0: no cap.
NEXUS_WS_RECHECK_S = env.float("NEXUS_WS_RECHECK_S", default=10.0)
NEXUS_WS_MAX_PER_CREDENTIAL = env.int("NEXUS_WS_MAX_PER_CREDENTIAL", default=50)
NEXUS_MCP_ALLOWED_HOSTS = env.list("NEXUS_MCP_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", ".localhost", "[::1]"])
# Outbound webhooks (apps/integrations/webhooks.py): Celery sends each delivery from the `webhooks` queue
# with this timeout, retries failures after a random delay of up to base * 2^(attempt-1) seconds (capped at
# max), and marks the delivery failed after max attempts. Loopback, private and link-local receivers are refused
# unless allowed (by default as for the http_request node). Beat re-enqueues, every interval, pending deliveries
# overdue by more than the grace (lost messages, delays too long for a broker countdown).
NEXUS_WEBHOOK_TIMEOUT_S = env.float("NEXUS_WEBHOOK_TIMEOUT_S", default=10.0)
NEXUS_WEBHOOK_BACKOFF_BASE_S = env.float("NEXUS_WEBHOOK_BACKOFF_BASE_S", default=2.0)
NEXUS_WEBHOOK_BACKOFF_MAX_S = env.float("NEXUS_WEBHOOK_BACKOFF_MAX_S", default=3600.0)
NEXUS_WEBHOOK_MAX_ATTEMPTS = env.int("NEXUS_WEBHOOK_MAX_ATTEMPTS", default=15)
NEXUS_WEBHOOK_ALLOW_PRIVATE = env.bool("NEXUS_WEBHOOK_ALLOW_PRIVATE", default=NEXUS_ENGINE_LIMITS["allow_private_network"])
NEXUS_WEBHOOK_SWEEP_INTERVAL_S = env.float("NEXUS_WEBHOOK_SWEEP_INTERVAL_S", default=5.0)
NEXUS_WEBHOOK_SWEEP_GRACE_S = env.float("NEXUS_WEBHOOK_SWEEP_GRACE_S", default=30.0)
NEXUS_WEBHOOK_QUEUE = "webhooks"  # consumed by every worker (Procfile -Q nexus,webhooks)

SHARED_APPS = [
    "django_tenants",
    "apps.tenants",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "apps.ops.admin_apps.NexusAdminConfig",  # django.contrib.admin with the audited, throttled site
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from /static/, not a CDN: the docs work without internet access
    "apps.core",
    "oauth2_provider",
    "rest_framework_simplejwt.token_blacklist",  # refresh tokens: each used once, revoked on password change
    "apps.accounts",
    "apps.integrations",
    "apps.audit",
    "apps.ops",
    "apps.api",
    "apps.cli",
]
TENANT_APPS = [
    "apps.workflows",
    "apps.runs",
    "apps.events",
    "apps.nexus_sessions",
    "apps.datasets",
    "apps.artifacts",
    "apps.mail",
]
INSTALLED_APPS = SHARED_APPS + [app for app in TENANT_APPS if app not in SHARED_APPS]

TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# Our middleware sets the schema once per request; skip django-tenants' repeated SET search_path.
TENANT_LIMIT_SET_CALLS = True
PUBLIC_SCHEMA_NAME = "public"

MIDDLEWARE = [
    # /static/ first: public files, the same for every caller, need no tenant, credential or audit context.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.audit.middleware.AuditContextMiddleware",
    "apps.tenants.middleware.TenantPrincipalMiddleware",
    "apps.ratelimit.middleware.RateLimitMiddleware",
    "apps.events.middleware.EventOriginMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # X-Frame-Options: DENY (X_FRAME_OPTIONS) on the admin's pages: no other site may frame them (clickjacking).
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The chain for /api/ (see nexus_site/wsgi.py): bearer-authenticated requests need no session or CSRF.
API_MIDDLEWARE = [
    "apps.audit.middleware.AuditContextMiddleware",
    "apps.tenants.middleware.TenantPrincipalMiddleware",
    "apps.ratelimit.middleware.RateLimitMiddleware",
    "apps.events.middleware.EventOriginMiddleware",
    "django.middleware.security.SecurityMiddleware",
]

ROOT_URLCONF = "nexus_site.urls"
WSGI_APPLICATION = "nexus_site.wsgi.application"
ASGI_APPLICATION = "nexus_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASE_URL = env("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/nexus")
# The same database as the role that owns the schema: `nexus up`/`nexus setup` migrate and bootstrap with it, and
# every process serves as DATABASE_URL's less privileged role (apps/ops/database_roles.py, docs/deploy-postgres.md).
NEXUS_MIGRATE_DATABASE_URL = env("NEXUS_MIGRATE_DATABASE_URL", default="")
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ENGINE"] = "django_tenants.postgresql_backend"
# Persistent connections: connecting per request costs ~10 ms (STACK.md). ASGI processes override this
# with a pool in asgi.py because Django under ASGI leaks persistent connections.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("NEXUS_CONN_MAX_AGE", default=600)
# Off by default: the check is one more round trip per request; a dropped connection fails one request.
# Server-side parameter binding lets PostgreSQL prepare the hot statements once per connection instead
# of psycopg quoting every parameter into the SQL text (measured: less CPU on both sides).
DATABASES["default"].setdefault("OPTIONS", {})["server_side_binding"] = env.bool("NEXUS_SERVER_SIDE_BINDING", default=True)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("NEXUS_CONN_HEALTH_CHECKS", default=False)
# The ASGI process (nexus_site/asgi.py turns this on) keeps no persistent connection, and connecting per call
# costs ~2 ms here: it borrows from a psycopg pool instead, as STACK.md advises under ASGI.
if env.bool("NEXUS_DB_POOL", default=False):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("NEXUS_DB_POOL_MIN", default=2),
        "max_size": env.int("NEXUS_DB_POOL_MAX", default=10),
        "timeout": env.float("NEXUS_DB_POOL_TIMEOUT_S", default=10.0),
    }
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Not on the event path: WebSocket events go through one Redis pub/sub subscription per tenant and daphne process
# (apps/events/fanout.py, apps/realtime/hub.py; bench/RESULTS.md "Realtime" for why). Kept for Channels code
# that wants a layer (group_send between processes); the event consumers do not open a channel on it.
CHANNEL_LAYERS = {
    "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}},
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = 3600
CELERY_TASK_DEFAULT_QUEUE = "nexus"
# A message whose worker died is handed out again after this many seconds (by default a little more
# than the longest run allowed); a run still executing is protected from a second copy by a database
# advisory lock (apps/runs/services.py). Workers sweep for such messages every restore interval.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("NEXUS_CELERY_VISIBILITY_TIMEOUT", default=int(NEXUS_ENGINE_LIMITS["max_run_seconds"]) + 60),
    "unacked_restore_interval": env.int("NEXUS_CELERY_RESTORE_INTERVAL", default=10),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_ALWAYS_EAGER = False
# Workers keep their database connection from task to task, as web processes do from request to request
# (CONN_MAX_AGE): Celery's Django fixup otherwise closes it around every task, and each task pays a new
# connection (measured: half the CPU of a webhook delivery). nexus_site/celery.py closes a connection that
# errored or outlived CONN_MAX_AGE after each task, as Django does after each request.
CELERY_DB_REUSE_MAX = env.int("NEXUS_CELERY_DB_REUSE_MAX", default=1000)

# Audit log (apps/audit): rows are sealed into the hash chain by beat every few seconds (and before every
# `nexus audit verify|list`), and rows older than the retention are pruned hourly. Client ips come from
# X-Forwarded-For only when the peer is one of these proxies (HAProxy on loopback).
NEXUS_AUDIT_RETENTION_DAYS = env.int("NEXUS_AUDIT_RETENTION_DAYS", default=365)
NEXUS_AUDIT_SEAL_INTERVAL_S = env.float("NEXUS_AUDIT_SEAL_INTERVAL_S", default=5.0)
NEXUS_TRUSTED_PROXIES = frozenset(env.list("NEXUS_TRUSTED_PROXIES", default=["127.0.0.1", "::1"]))
CELERY_BEAT_SCHEDULE = {
    "audit-seal": {"task": "audit.seal", "schedule": NEXUS_AUDIT_SEAL_INTERVAL_S},
    "audit-prune": {"task": "audit.prune", "schedule": 3600.0},
    "webhooks-sweep": {"task": "integrations.sweep", "schedule": NEXUS_WEBHOOK_SWEEP_INTERVAL_S},
}

# Rate limits (apps/ratelimit): every authenticated request counts against its credential's limit (an API
# application's, else its API key's, else its user's) and its tenant's, in Redis, one round trip per request.
# Requests per minute by tenant plan: apps/ratelimit/config.py DEFAULT_PLANS, with NEXUS_RATE_LIMIT_PLANS (JSON,
# e.g. '{"standard": {"tenant": 60000}}') laid over it; an application's own rate_limit_per_minute wins over
# its plan's `app`. When Redis is unreachable requests pass (logged once), and Redis is tried again after RETRY_S.
from apps.ratelimit.config import rate_limit_plans  # noqa: E402

NEXUS_RATE_LIMIT_ENABLED = env.bool("NEXUS_RATE_LIMIT_ENABLED", default=True)
NEXUS_RATE_LIMIT_PLANS = rate_limit_plans(env.str("NEXUS_RATE_LIMIT_PLANS", default="{}"))
NEXUS_RATE_LIMIT_REDIS_URL = env("NEXUS_RATE_LIMIT_REDIS_URL", default=REDIS_URL)
NEXUS_RATE_LIMIT_PREFIX = env("NEXUS_RATE_LIMIT_PREFIX", default="nexus:rl:")
NEXUS_RATE_LIMIT_TIMEOUT_S = env.float("NEXUS_RATE_LIMIT_TIMEOUT_S", default=0.25)
NEXUS_RATE_LIMIT_RETRY_S = env.float("NEXUS_RATE_LIMIT_RETRY_S", default=2.0)
# The plan of the installation's first tenant (NEXUS_TENANT), set when bootstrap creates it.
NEXUS_DEFAULT_TENANT_PLAN = env("NEXUS_TENANT_PLAN", default="enterprise")
# Failed attempts at POST /api/v1/auth/token/ (per username) and /oauth/token/ (per client id), and per client
# ip at each: at most this many per period, then 429 with Retry-After. Always on (a password guard, not a quota).
NEXUS_LOGIN_THROTTLE_ACCOUNT = env.int("NEXUS_LOGIN_THROTTLE_ACCOUNT", default=10)
NEXUS_LOGIN_THROTTLE_IP = env.int("NEXUS_LOGIN_THROTTLE_IP", default=50)
NEXUS_LOGIN_THROTTLE_PERIOD_S = env.float("NEXUS_LOGIN_THROTTLE_PERIOD_S", default=300.0)
# When that throttle cannot be checked (Redis down or slow), logins answer 503: fail closed (apps/ratelimit/middleware.py).
# Bodies of the login, refresh and OAuth2 endpoints above this size get 413 before anything parses them.
NEXUS_AUTH_MAX_BODY_BYTES = env.int("NEXUS_AUTH_MAX_BODY_BYTES", default=8192)
# Failed logins (unauthenticated, naming any tenant) written into one tenant's audit log per minute at most; the
# rest are counted in nexus_rate_limited_total{scope="login_audit"} (apps/accounts/services.py login_attempted).
NEXUS_LOGIN_AUDIT_PER_MINUTE = env.int("NEXUS_LOGIN_AUDIT_PER_MINUTE", default=30)
# GET /metrics (Prometheus) answers a platform admin's credential, or `Authorization: Bearer <this token>` when
# set; with ALLOW_LOOPBACK, also a caller on this machine without credential (the client address, as the proxy
# forwarded it). Every figure covers all tenants, so no tenant user ever gets them.
NEXUS_METRICS_TOKEN = env("NEXUS_METRICS_TOKEN", default="")
NEXUS_METRICS_ALLOW_LOOPBACK = env.bool("NEXUS_METRICS_ALLOW_LOOPBACK", default=False)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
]

# Login (POST /api/v1/auth/token/): a JWT pair bound to one tenant, for users from the database and, only
# when NEXUS_LDAP_URI is set, from LDAP (apps/accounts/auth_config.py builds both from these values).
from apps.accounts.auth_config import jwt_signing_key, ldap_settings, simple_jwt_settings  # noqa: E402

NEXUS_JWT_SIGNING_KEY = jwt_signing_key(configured=env("NEXUS_JWT_SIGNING_KEY", default=""), secret_key=SECRET_KEY)
NEXUS_JWT_ACCESS_MINUTES = env.int("NEXUS_JWT_ACCESS_MINUTES", default=15)
NEXUS_JWT_REFRESH_DAYS = env.int("NEXUS_JWT_REFRESH_DAYS", default=1)
SIMPLE_JWT = simple_jwt_settings(
    signing_key=NEXUS_JWT_SIGNING_KEY, access_minutes=NEXUS_JWT_ACCESS_MINUTES, refresh_days=NEXUS_JWT_REFRESH_DAYS
)
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
NEXUS_LDAP_URI = env("NEXUS_LDAP_URI", default="")
NEXUS_LDAP_ROLE_MAP: dict = {}
if NEXUS_LDAP_URI:
    # AUTH_LDAP_* for django-auth-ldap, NEXUS_LDAP_ROLE_MAP (group DN -> tenant and role), AUTHENTICATION_BACKENDS.
    globals().update(
        ldap_settings(
            uri=NEXUS_LDAP_URI,
            bind_dn=env("NEXUS_LDAP_BIND_DN", default=""),
            bind_password=env("NEXUS_LDAP_BIND_PASSWORD", default=""),
            user_search_base=env("NEXUS_LDAP_USER_SEARCH_BASE", default=""),
            group_search_base=env("NEXUS_LDAP_GROUP_SEARCH_BASE", default=""),
            role_map=env("NEXUS_LDAP_ROLE_MAP", default="{}"),
            start_tls=env.bool("NEXUS_LDAP_START_TLS", default=False),
        )
    )

# OAuth2 (django-oauth-toolkit): API applications get client-credentials clients (apps/integrations).
OAUTH2_PROVIDER_APPLICATION_MODEL = "oauth2_provider.Application"
OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL = "oauth2_provider.AccessToken"
OAUTH2_PROVIDER_ID_TOKEN_MODEL = "oauth2_provider.IDToken"
OAUTH2_PROVIDER_GRANT_MODEL = "oauth2_provider.Grant"
OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL = "oauth2_provider.RefreshToken"
# Client credentials only (BackendApplicationServer): tokens `nxo_…` (apps/integrations/oauth.py), scopes from the
# vocabulary of apps/accounts/access.py, available to each client as its application allows.
from apps.accounts.scopes import SCOPE_DESCRIPTIONS  # noqa: E402

OAUTH2_PROVIDER = {
    "ACCESS_TOKEN_EXPIRE_SECONDS": env.int("NEXUS_OAUTH_TOKEN_SECONDS", default=3600),
    # Only the SHA-256 of a token is stored (RFC 9700 storage); lookups go by that checksum.
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "OAUTH2_SERVER_CLASS": "oauthlib.oauth2.BackendApplicationServer",
    "OAUTH2_VALIDATOR_CLASS": "apps.integrations.oauth.ApplicationValidator",
    "SCOPES_BACKEND_CLASS": "apps.integrations.oauth.ApplicationScopes",
    "ACCESS_TOKEN_GENERATOR": "apps.integrations.oauth.access_token_generate",
    "SCOPES": SCOPE_DESCRIPTIONS,
    "DEFAULT_SCOPES": ["__all__"],
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apps.api.authentication.PrincipalAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["apps.api.permissions.IsAuthenticatedPrincipal"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apps.api.nul.NulSafeJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Nexus API",
    "DESCRIPTION": "Multi-tenant workflow platform: one workflow, every channel.",
    "VERSION": NEXUS_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # A PATCH body is documented as its serializer declares it (SessionUpdate requires `metadata`), not as a
    # "Patched…" copy with every field made optional.
    "COMPONENT_SPLIT_PATCH": False,
    "SCHEMA_PATH_PREFIX": r"/api/v1",  # tags and default operation ids from the resource: workflows, sessions, …
    # Several response fields are called `status`: each choice set gets a name of its own.
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "apps.runs.models.Status",
        "DeliveryStatusEnum": ["pending", "delivered", "failed"],
        "SuiteCaseStatusEnum": ["passed", "failed"],
        "DeployStatusEnum": ["deployed"],
    },
    # Who may read the schema and the docs: apps/api/docs.py (NEXUS_API_DOCS_PUBLIC), read at each request.
    "SERVE_PERMISSIONS": ["apps.api.permissions.IsAuthenticatedPrincipal"],
    "SERVE_AUTHENTICATION": ["apps.api.authentication.PrincipalAuthentication"],
    # Swagger UI from drf-spectacular-sidecar under /static/ (the default loads it from a CDN: a blank page offline,
    # and refused by the production Content-Security-Policy). No validator badge: it would call validator.swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.postprocess_schema",
    ],
}
# The OpenAPI schema (/api/schema/) and its docs (/api/docs/) hold no secret: readable without a credential unless
# this is false (then they answer 401 without one, as every other API path).
NEXUS_API_DOCS_PUBLIC = env.bool("NEXUS_API_DOCS_PUBLIC", default=True)

# Tenant data: datasets that workflows query read-only, artifacts that runs produce.
NEXUS_DATASET_MAX_ROWS = env.int("NEXUS_DATASET_MAX_ROWS", default=100_000)
NEXUS_DATASET_MAX_BYTES = env.int("NEXUS_DATASET_MAX_BYTES", default=20_000_000)
NEXUS_DATASET_QUERY_TIMEOUT_MS = env.int("NEXUS_DATASET_QUERY_TIMEOUT_MS", default=10_000)
NEXUS_ARTIFACT_MAX_BYTES = env.int("NEXUS_ARTIFACT_MAX_BYTES", default=10_000_000)

# Outbound email (apps/mail): where the `email` node's and MCP send_email_report's messages go. NEXUS_SMTP_URL
# (apps/mail/smtp_url.py) or the older NEXUS_EMAIL_* variables name an SMTP server; with neither, nothing leaves
# the machine: each message is captured in the tenant's local outbox (`nexus mail list`, GET /api/v1/mail/), so a
# zero-configuration platform runs mail-sending workflows to the end. NEXUS_MAIL_TRANSPORT forces the choice:
# `outbox`, or `smtp` (Django's EMAIL_BACKEND, for a settings module that configures EMAIL_* itself).
from apps.mail.smtp_url import smtp_url_settings  # noqa: E402

NEXUS_SMTP_URL = env("NEXUS_SMTP_URL", default="")
_smtp = smtp_url_settings(NEXUS_SMTP_URL) if NEXUS_SMTP_URL else {}
_SMTP_BACKEND = "apps.mail.backends.SmtpBackend"
EMAIL_BACKEND = _SMTP_BACKEND if _smtp else env("NEXUS_EMAIL_BACKEND", default=_SMTP_BACKEND)
EMAIL_HOST = _smtp.get("EMAIL_HOST") or env("NEXUS_EMAIL_HOST", default="127.0.0.1")
EMAIL_PORT = _smtp.get("EMAIL_PORT") or env.int("NEXUS_EMAIL_PORT", default=25)
EMAIL_HOST_USER = _smtp["EMAIL_HOST_USER"] if _smtp else env("NEXUS_EMAIL_USER", default="")
EMAIL_HOST_PASSWORD = _smtp["EMAIL_HOST_PASSWORD"] if _smtp else env("NEXUS_EMAIL_PASSWORD", default="")
EMAIL_USE_TLS = _smtp["EMAIL_USE_TLS"] if _smtp else env.bool("NEXUS_EMAIL_TLS", default=False)
EMAIL_USE_SSL = _smtp.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = _smtp.get("EMAIL_TIMEOUT") or env.int("NEXUS_EMAIL_TIMEOUT", default=10)
EMAIL_SSL_CERTFILE = _smtp.get("EMAIL_SSL_CERTFILE")
EMAIL_SSL_KEYFILE = _smtp.get("EMAIL_SSL_KEYFILE")
NEXUS_SMTP_CA_FILE = _smtp.get("NEXUS_SMTP_CA_FILE")
_smtp_configured = bool(NEXUS_SMTP_URL) or any(env.str(name, default="") for name in ("NEXUS_EMAIL_HOST", "NEXUS_EMAIL_BACKEND"))
NEXUS_MAIL_TRANSPORT = env("NEXUS_MAIL_TRANSPORT", default="smtp" if _smtp_configured else "outbox")
if NEXUS_MAIL_TRANSPORT not in ("outbox", "smtp"):
    raise ImproperlyConfigured("NEXUS_MAIL_TRANSPORT must be outbox or smtp")
# Messages kept in each tenant's outbox (captured and sent alike): past it, the oldest go as new ones come in.
NEXUS_MAIL_OUTBOX_MAX = env.int("NEXUS_MAIL_OUTBOX_MAX", default=1000)
if NEXUS_MAIL_OUTBOX_MAX < 1:
    raise ImproperlyConfigured("NEXUS_MAIL_OUTBOX_MAX must be 1 or more")
DEFAULT_FROM_EMAIL = env("NEXUS_EMAIL_FROM", default="nexus@localhost")
# Mail a tenant may send (the `email` node and MCP send_email_report, apps/mail): messages per UTC day (0: none;
# a tenant's own quota_mail_per_day overrides it), and the recipients allowed: exact addresses and `@domain`
# entries, case-insensitive; empty: anyone.
NEXUS_MAIL_PER_TENANT_PER_DAY = env.int("NEXUS_MAIL_PER_TENANT_PER_DAY", default=500)
NEXUS_MAIL_ALLOWED_RECIPIENTS = tuple(entry.strip().lower() for entry in env.list("NEXUS_MAIL_ALLOWED_RECIPIENTS", default=[]))
for _entry in NEXUS_MAIL_ALLOWED_RECIPIENTS:
    if _entry.count("@") != 1 or _entry.endswith("@") or any(c.isspace() for c in _entry):
        raise ImproperlyConfigured(
            f"NEXUS_MAIL_ALLOWED_RECIPIENTS: {_entry!r} is neither an address (ada@example.com) nor a domain (@example.com)"
        )
if NEXUS_MAIL_PER_TENANT_PER_DAY < 0:
    raise ImproperlyConfigured("NEXUS_MAIL_PER_TENANT_PER_DAY must be 0 or more")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = NEXUS_DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
# WhiteNoise serves /static/ from the apps' and STATICFILES_DIRS' own folders, as the finders see them at start, so
# `nexus up` needs no collectstatic step (files from `manage.py collectstatic` into STATIC_ROOT are served too).
WHITENOISE_USE_FINDERS = True
# ... and STATIC_ROOT need not exist: without a collectstatic run there is nothing to warn about.
warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("NEXUS_LOG_LEVEL", default="WARNING")},
}
