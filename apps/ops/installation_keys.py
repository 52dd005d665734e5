"""The installation's secret keys: made once into the data directory on first start, reused by every later start;
and the rules a production key must meet.

Imported by the settings before Django is set up: nothing here may import models or need the app registry.

Why a file and not a default: a key written in the repository signs tokens anyone can forge (a platform admin's
JWT for user 1 was enough). Every installation gets its own random keys instead, created atomically (several
processes may start at once: each writes its own temporary file and links it into place, the first link wins and
everyone reads the winner), readable by the owner only (mode 600).
"""

import contextlib
import json
import os
import secrets
import tempfile
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from apps.accounts.auth_config import MIN_SIGNING_KEY_BYTES, jwt_signing_key

SECRETS_FILE = "secrets.json"
# The test settings' key (tests serve nothing public) and the local default of earlier versions: both are in the
# source, so no server started from nexus_site.settings.local or .production accepts them, nor keys derived from them.
TEST_SECRET_KEY = "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
PUBLISHED_SECRET_KEYS = frozenset({TEST_SECRET_KEY, "local-development-only-secret-key-not-for-production-use-0123456789"})
# Django's own check (security.W009) asks for at least 50 characters.
MIN_SECRET_KEY_CHARS = 50


def _published_jwt_keys() -> frozenset[str]:
    return frozenset(jwt_signing_key(configured="", secret_key=key) for key in PUBLISHED_SECRET_KEYS)


def _read(path: Path) -> dict[str, str]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ImproperlyConfigured(f"{path} holds the secret keys but is readable by other users (mode {mode:o}): chmod 600 it")
    try:
        keys = json.loads(path.read_text())
    except ValueError as error:
        raise ImproperlyConfigured(f"{path} is not valid JSON ({error}): remove it to generate new keys") from None
    for name, minimum in (("secret_key", MIN_SECRET_KEY_CHARS), ("jwt_signing_key", MIN_SIGNING_KEY_BYTES)):
        value = keys.get(name) if isinstance(keys, dict) else None
        if not isinstance(value, str) or len(value) < minimum:
            raise ImproperlyConfigured(f"{path}: {name} is missing or shorter than {minimum} characters")
    return {"secret_key": keys["secret_key"], "jwt_signing_key": keys["jwt_signing_key"]}


def installation_keys(*, data_dir: Path) -> dict[str, str]:
    """`{"secret_key", "jwt_signing_key"}` from `<data_dir>/secrets.json`, generated on the first call."""
    path = Path(data_dir) / SECRETS_FILE
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = {"secret_key": secrets.token_urlsafe(64), "jwt_signing_key": secrets.token_urlsafe(48)}
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secrets-", suffix=".tmp")  # mode 600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(keys, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        # Another process started at the same moment and won (FileExistsError): use its keys.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)  # atomic and exclusive: a complete file or none, and never replaced
    finally:
        os.unlink(temporary)
    return _read(path)


def refuse_published_keys(*, secret_key: str, jwt_key: str) -> None:
    """ImproperlyConfigured when NEXUS_SECRET_KEY or NEXUS_JWT_SIGNING_KEY is a key published in the source."""
    if secret_key in PUBLISHED_SECRET_KEYS:
        raise ImproperlyConfigured(
            "NEXUS_SECRET_KEY is a key published in the Nexus source (the test or old local default): "
            "anyone could sign tokens with it; unset it to generate one, or set a random one"
        )
    if jwt_key and (jwt_key in PUBLISHED_SECRET_KEYS or jwt_key in _published_jwt_keys()):
        raise ImproperlyConfigured(
            "NEXUS_JWT_SIGNING_KEY is a key published in (or derived from one in) the Nexus source: set a random one"
        )


def require_production_keys(*, secret_key: str, jwt_key: str) -> None:
    """Production takes both keys from its environment, long, distinct and never one the source publishes."""
    if not secret_key:
        raise ImproperlyConfigured(
            "NEXUS_SECRET_KEY must be set in production (nexus_site.settings.production): "
            f"a random value of at least {MIN_SECRET_KEY_CHARS} characters"
        )
    if len(secret_key) < MIN_SECRET_KEY_CHARS:
        raise ImproperlyConfigured(f"NEXUS_SECRET_KEY must be at least {MIN_SECRET_KEY_CHARS} characters long in production")
    if not jwt_key:
        raise ImproperlyConfigured(
            "NEXUS_JWT_SIGNING_KEY must be set in production (nexus_site.settings.production): "
            f"a random value of at least {MIN_SIGNING_KEY_BYTES} bytes, not derived from NEXUS_SECRET_KEY"
        )
    if len(jwt_key.encode()) < MIN_SIGNING_KEY_BYTES:
        raise ImproperlyConfigured(f"NEXUS_JWT_SIGNING_KEY must be at least {MIN_SIGNING_KEY_BYTES} bytes long")
    if jwt_key == secret_key:
        raise ImproperlyConfigured("NEXUS_JWT_SIGNING_KEY must differ from NEXUS_SECRET_KEY")
    refuse_published_keys(secret_key=secret_key, jwt_key=jwt_key)
