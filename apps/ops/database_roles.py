"""Two PostgreSQL roles: the one that owns the schema and runs migrations (NEXUS_MIGRATE_DATABASE_URL), and the
less privileged one every process serves with (DATABASE_URL). docs/deploy-postgres.md creates them.

Why: the audit log's append-only trigger (apps/audit/migrations/0001) binds everyone but the table's owner and
superusers, who may `ALTER TABLE … DISABLE TRIGGER` or `SET session_replication_role = replica`. Serving as a role
that is neither keeps the application's own credentials from erasing its tracks.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import environ
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

# Only who connects changes: the same database on the same server.
_CREDENTIALS = ("USER", "PASSWORD")
_SAME = ("NAME", "HOST", "PORT")


def migration_credentials() -> dict[str, str] | None:
    """USER and PASSWORD of NEXUS_MIGRATE_DATABASE_URL, or None when it is not set (one role does everything)."""
    url = settings.NEXUS_MIGRATE_DATABASE_URL
    if not url:
        return None
    config = environ.Env.db_url_config(url)
    serving = settings.DATABASES["default"]
    for key in _SAME:
        if str(config.get(key) or "") != str(serving.get(key) or ""):
            raise ImproperlyConfigured(
                f"NEXUS_MIGRATE_DATABASE_URL must name the same database as DATABASE_URL (its {key.lower()} differs): "
                "only the role may change"
            )
    if not config.get("USER"):
        raise ImproperlyConfigured("NEXUS_MIGRATE_DATABASE_URL must name the role that owns the schema (user@host)")
    return {key: config.get(key) or "" for key in _CREDENTIALS}


@contextmanager
def migration_connection() -> Iterator[None]:
    """Within the block, the default connection (and any opened from its settings: pg_dump, the audit log's own
    connection) is the owner's, when NEXUS_MIGRATE_DATABASE_URL is set; after it, the serving role's again."""
    credentials = migration_credentials()
    if credentials is None:
        yield
        return
    connection = connections["default"]
    # One dict shared by settings.DATABASES and every connection made from it.
    serving = {key: connection.settings_dict.get(key) for key in _CREDENTIALS}
    connection.close()
    connection.settings_dict.update(credentials)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.update(serving)
