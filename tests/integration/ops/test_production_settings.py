"""nexus_site.settings.production: no start without explicit, strong secret keys; with them, DEBUG off, secure
cookies, HSTS behind the proxy's X-Forwarded-Proto, X-Frame-Options and Content-Security-Policy on every page.
Each case runs in its own process, as a server would import the settings."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.auth_config import jwt_signing_key
from apps.ops.installation_keys import TEST_SECRET_KEY, require_production_keys

REPO = Path(__file__).resolve().parents[3]
SECRET = "p" * 30 + "-production-secret-key-of-sixty-chars"
JWT_KEY = "j" * 20 + "-production-jwt-key-40"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def _run(script: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("NEXUS_SECRET_KEY", "NEXUS_JWT_SIGNING_KEY", "NEXUS_ENV")}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**clean, "DJANGO_SETTINGS_MODULE": "nexus_site.settings.production", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEXUS_JWT_SIGNING_KEY": JWT_KEY}, "NEXUS_SECRET_KEY must be set in production"),
        ({"NEXUS_SECRET_KEY": SECRET}, "NEXUS_JWT_SIGNING_KEY must be set in production"),
        (
            {"NEXUS_SECRET_KEY": TEST_SECRET_KEY, "NEXUS_JWT_SIGNING_KEY": JWT_KEY},
            "NEXUS_SECRET_KEY is a key published in the Nexus source",
        ),
    ],
)
def test_production_settings_refuse_to_import_without_explicit_keys(env, message):
    result = _run("import django; django.setup()", **env)
    assert result.returncode == 1
    assert _last_line(result).startswith(f"django.core.exceptions.ImproperlyConfigured: {message}")


@pytest.mark.parametrize(
    ("secret_key", "jwt_key", "message"),
    [
        ("short-but-set", JWT_KEY, "NEXUS_SECRET_KEY must be at least 50 characters long in production"),
        (SECRET, "x" * 31, "NEXUS_JWT_SIGNING_KEY must be at least 32 bytes long"),
        (SECRET, SECRET, "NEXUS_JWT_SIGNING_KEY must differ from NEXUS_SECRET_KEY"),
        (SECRET, TEST_SECRET_KEY, "NEXUS_JWT_SIGNING_KEY is a key published in (or derived from one in) the Nexus source"),
        (
            SECRET,
            jwt_signing_key(configured="", secret_key=TEST_SECRET_KEY),
            "NEXUS_JWT_SIGNING_KEY is a key published in (or derived from one in) the Nexus source",
        ),
    ],
)
def test_weak_or_published_production_keys_are_refused(secret_key, jwt_key, message):
    with pytest.raises(ImproperlyConfigured) as refused:
        require_production_keys(secret_key=secret_key, jwt_key=jwt_key)
    assert str(refused.value).startswith(message)


def test_nexus_env_production_selects_the_production_settings_in_manage_py():
    clean = {k: v for k, v in os.environ.items() if k not in ("NEXUS_SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={**clean, "NEXUS_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "ImproperlyConfigured: NEXUS_SECRET_KEY must be set in production" in _last_line(result)


def test_local_settings_refuse_to_run_when_nexus_env_says_production():
    result = _run("import django; django.setup()", DJANGO_SETTINGS_MODULE="nexus_site.settings.local", NEXUS_ENV="production")
    assert result.returncode == 1
    assert "NEXUS_ENV is production but DJANGO_SETTINGS_MODULE is nexus_site.settings.local" in _last_line(result)


# Requests through the full middleware chain (the test database, so the tenant middleware can look up the host).
REQUESTS = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="localhost")
https = client.get("/admin/login/", HTTP_X_FORWARDED_PROTO="https")
plain = client.get("/admin/login/")
health = client.get("/health")
print(json.dumps({
    "debug": settings.DEBUG,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "csrf_cookie_secure": settings.CSRF_COOKIE_SECURE,
    "https": [https.status_code, {name: https.headers.get(name) for name in (
        "Strict-Transport-Security", "X-Frame-Options", "Content-Security-Policy", "X-Content-Type-Options")}],
    "csrf_cookie_secure_flag": https.cookies["csrftoken"]["secure"],
    "plain": [plain.status_code, plain.headers.get("Location")],
    "health": [health.status_code, health.headers.get("Content-Security-Policy"), sorted(health.json())],
}))
"""


def test_production_settings_with_keys_set_the_security_headers(db):
    from django.db import connection

    database = connection.settings_dict
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    url = f"postgres://{database['USER'] or 'postgres'}@{host}:{port}/{database['NAME']}"
    result = _run(REQUESTS, NEXUS_SECRET_KEY=SECRET, NEXUS_JWT_SIGNING_KEY=JWT_KEY, DATABASE_URL=url)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == {
        "debug": False,
        "session_cookie_secure": True,
        "csrf_cookie_secure": True,
        "https": [
            200,
            {
                "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
            },
        ],
        "csrf_cookie_secure_flag": True,
        # Plain HTTP (X-Forwarded-Proto from HAProxy says so) is sent to HTTPS, except the health check.
        "plain": [301, "https://localhost/admin/login/"],
        "health": [200, CSP, ["checks", "healthy", "status"]],
    }
