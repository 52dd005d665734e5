"""A serving role made as docs/deploy-postgres.md says (no superuser, owns no table) cannot switch the audit log's
append-only trigger off, nor get around it; and NEXUS_MIGRATE_DATABASE_URL may change only the role."""

import uuid

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from psycopg import sql

from apps.ops.database_roles import migration_credentials

pytestmark = pytest.mark.django_db

TABLE = "public.audit_auditevent"


def _params(database: dict, user: str) -> dict:
    return {"host": database["HOST"] or "127.0.0.1", "port": database["PORT"] or 5432, "dbname": database["NAME"], "user": user}


@pytest.fixture
def app_role(nexus_world):
    """A login role with the serving role's grants on the tables that exist (the test database was migrated by the
    superuser, so the public tables belong to it, as they belong to nexus_owner in a deployment)."""
    from django.db import connection

    database = connection.settings_dict
    role = f"nexus_app_test_{uuid.uuid4().hex[:8]}"
    name = sql.Identifier(role)
    with psycopg.connect(**_params(database, database["USER"] or "postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS").format(name))
        admin.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY, CREATE ON DATABASE {} TO {}").format(sql.Identifier(database["NAME"]), name)
        )
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
        admin.execute(
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE, REFERENCES ON ALL TABLES IN SCHEMA public TO {}").format(name)
        )
        admin.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(name))
    try:
        yield _params(database, role)
    finally:
        with psycopg.connect(**_params(database, database["USER"] or "postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(name))
            admin.execute(sql.SQL("DROP ROLE {}").format(name))


def _refused(params: dict, statement: str) -> str:
    with psycopg.connect(**params, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
        conn.execute(statement)
    return str(refused.value).splitlines()[0]


def test_the_serving_role_cannot_disable_drop_or_bypass_the_audit_trigger(app_role):
    not_owner = "must be owner of table audit_auditevent"
    assert _refused(app_role, f"ALTER TABLE {TABLE} DISABLE TRIGGER audit_auditevent_append_only") == not_owner
    assert _refused(app_role, f"ALTER TABLE {TABLE} DISABLE TRIGGER ALL") == not_owner
    dropped = _refused(app_role, f"DROP TRIGGER audit_auditevent_append_only ON {TABLE}")
    assert dropped == "must be owner of relation audit_auditevent"
    replica = _refused(app_role, "SET session_replication_role = replica")
    assert replica == 'permission denied to set parameter "session_replication_role"'
    assert _refused(app_role, f"TRUNCATE {TABLE}") == "permission denied for table audit_auditevent"
    with psycopg.connect(**app_role, autocommit=True) as conn:
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (False,)
        assert conn.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgenabled = 'O'", [TABLE]
        ).fetchone() == (2,)


def test_the_serving_role_writes_audit_rows_but_cannot_delete_or_edit_them(app_role):
    row_id = f"aud_roletest{uuid.uuid4().hex[:12]}"
    with psycopg.connect(**app_role) as conn:  # one transaction, rolled back: nothing stays behind
        conn.execute(
            f"INSERT INTO {TABLE} (id, ts, tenant_id, actor, actor_type, channel, action, target, outcome, request_id, details)"  # noqa: S608
            " VALUES (%s, now(), 0, 'system', 'system', 'cli', 'test.inserted', '', 'success', '', '{}')",
            [row_id],
        )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: DELETE"), conn.transaction():
            conn.execute(f"DELETE FROM {TABLE} WHERE id = %s", [row_id])  # noqa: S608
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only: UPDATE"), conn.transaction():
            conn.execute(f"UPDATE {TABLE} SET actor = 'someone-else' WHERE id = %s", [row_id])  # noqa: S608
        assert conn.execute(f"SELECT actor FROM {TABLE} WHERE id = %s", [row_id]).fetchone() == ("system",)  # noqa: S608
        conn.rollback()


def test_the_migration_url_may_change_the_role_only(settings):
    database = settings.DATABASES["default"]
    host, port = database["HOST"] or "127.0.0.1", database["PORT"] or 5432
    settings.NEXUS_MIGRATE_DATABASE_URL = ""
    assert migration_credentials() is None
    settings.NEXUS_MIGRATE_DATABASE_URL = f"postgres://nexus_owner:s3cret@{host}:{port}/{database['NAME']}"
    assert migration_credentials() == {"USER": "nexus_owner", "PASSWORD": "s3cret"}
    settings.NEXUS_MIGRATE_DATABASE_URL = f"postgres://nexus_owner:s3cret@{host}:{port}/another_database"
    with pytest.raises(ImproperlyConfigured, match=r"must name the same database as DATABASE_URL \(its name differs\)"):
        migration_credentials()
