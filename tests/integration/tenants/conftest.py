"""Tenant fixtures: a platform-admin principal, an API client that authenticates as one, catalog snapshots."""

import re
import threading

import pytest


@pytest.fixture
def admin(nexus_world):
    from apps.core.principal import Principal

    home = nexus_world["tenants"]["acme"]
    return Principal(
        kind="user",
        actor="user:platform-admin",
        tenant_id=home.pk,
        tenant_slug=home.slug,
        role="owner",
        user_id=None,
        is_platform_admin=True,
    )


@pytest.fixture
def admin_api(client, nexus_world):
    """An API client authenticated as a platform admin: a real login (JWT) of a superuser."""
    from django.db import connection

    from apps.accounts.services import user_create
    from tests.integration.conftest import ApiClient

    connection.set_schema_to_public()
    user_create(username="platform-root", password="a-long-password-123", is_platform_admin=True)
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "platform-root", "password": "a-long-password-123", "tenant": "acme"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    return ApiClient(client, response.json()["access"])


def in_thread(function, *args, **kwargs):
    """Run `function` on a thread of its own: its own database connection, outside the test's transaction, so
    what it does is committed (and must be cleaned up)."""
    outcome: dict = {}

    def target():
        from django.db import connection

        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed back to the test
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=60)
    if thread.is_alive():
        raise TimeoutError(f"{function.__name__} still running after 60 s (waiting on a lock the test holds?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def schema_present(schema_name: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [schema_name])
        return cursor.fetchone() is not None


def catalog(schema_name: str) -> dict:
    """Everything a schema defines, with its own name replaced by <schema> so two schemas can be compared.

    Reading a sequence's last value locks it until the transaction ends: in a test that later drops the schema
    from another connection, take the snapshot with in_thread()."""
    from django.db import connection

    queries = {
        "tables": """
            SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = %(s)s ORDER BY 1""",
        # Columns in order, but not by attnum: a dropped column leaves a gap in a migrated schema and none in a
        # restored one, and the gap means nothing.
        "columns": """
            SELECT table_name, column_name, data_type, udt_schema, udt_name, character_maximum_length,
                   numeric_precision, numeric_scale, datetime_precision, is_nullable, column_default,
                   is_identity, identity_generation, identity_start, identity_increment, identity_maximum,
                   identity_minimum, identity_cycle, is_generated, generation_expression, collation_name
            FROM information_schema.columns WHERE table_schema = %(s)s ORDER BY table_name, ordinal_position""",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = %(s)s ORDER BY 2",
        "constraints": """
            SELECT cl.relname, con.conname, con.contype, pg_get_constraintdef(con.oid), con.condeferrable,
                   con.condeferred, con.convalidated
            FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
            LEFT JOIN pg_class cl ON cl.oid = con.conrelid
            WHERE n.nspname = %(s)s ORDER BY 1, 2""",
        "sequences": """
            SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by, cycle, cache_size,
                   last_value
            FROM pg_sequences WHERE schemaname = %(s)s ORDER BY 1""",
        "sequence_owners": """
            SELECT s.relname, t.relname, a.attname, d.deptype
            FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
            JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
            JOIN pg_class t ON t.oid = d.refobjid
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
            WHERE s.relkind = 'S' AND n.nspname = %(s)s ORDER BY 1""",
        "triggers": """
            SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid)
            FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %(s)s AND NOT t.tgisinternal ORDER BY 1, 2""",
        "functions": """
            SELECT p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc)
            FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %(s)s ORDER BY 1, 2""",
        "views": "SELECT table_name, view_definition FROM information_schema.views WHERE table_schema = %(s)s ORDER BY 1",
        "relations": """
            SELECT c.relname, c.relkind, c.relpersistence, c.relhasindex, c.relrowsecurity, c.reloptions::text,
                   obj_description(c.oid, 'pg_class')
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(s)s ORDER BY 1""",
        "column_comments": """
            SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
            WHERE n.nspname = %(s)s AND a.attnum > 0 AND NOT a.attisdropped AND col_description(c.oid, a.attnum) IS NOT NULL
            ORDER BY 1, 2""",
    }
    name = re.compile(rf'(?<![A-Za-z0-9_])"?{re.escape(schema_name)}"?(?![A-Za-z0-9_])')

    def normalise(value):
        return name.sub("<schema>", value) if isinstance(value, str) else value

    snapshot = {}
    with connection.cursor() as cursor:
        for kind, sql in queries.items():
            cursor.execute(sql, {"s": schema_name})
            snapshot[kind] = [tuple(normalise(value) for value in row) for row in cursor.fetchall()]
    return snapshot


def applied_migrations(schema_name: str) -> set[tuple[str, str]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{schema_name}".django_migrations')
        return set(cursor.fetchall())
