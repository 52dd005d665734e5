"""New tenant schemas by replaying a pg_dump of a kept-migrated template schema, with the schema name substituted.

Why not migrate each new schema: that costs 0.2-0.9 s and grows with every migration. Why not django-tenants'
clone function: it renames UNIQUE constraints and trusts a template that may be behind (docs in STACK.md).
A dump of the template replayed in one transaction is exact (every name identical) and takes tens of ms.

Invariants defended here:
- The template is a Tenant row (`NEXUS_TENANT_TEMPLATE_SCHEMA`, inactive, no domain), so `migrate_schemas`
  migrates it with every other tenant; listings leave it out (`Tenant.objects.real()`).
- A dump is keyed by the latest migration of every app on disk and is only taken from a template that has all
  of them applied; its django_migrations rows come with it, so a replayed schema is marked migrated exactly as
  far as it is. A new migration changes the key: the next creation (or `migrate_schemas` reaching the template)
  builds a new dump, and until one exists new schemas are migrated the ordinary way.
- The template's name is replaced token by token: identifiers, and the sequence literal of `setval`. A dump that
  carries the name anywhere else (another string literal, a function body) is refused rather than guessed at.
- pg_dump is another session: it cannot see uncommitted work and would wait on this transaction's locks, so a
  dump is only built outside any transaction.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import logging
import os
import re
import shutil
import subprocess
import threading
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django_tenants.utils import schema_exists

from apps.core.locks import TEMPLATE_BUILD
from apps.tenants.connection import current_owner, current_schema, use_public, use_tenant
from apps.tenants.models import SchemaDump, Tenant

logger = logging.getLogger(__name__)

# Bump when the way a dump is cleaned or replayed changes: old rows are then never used.
FORMAT_VERSION = "1"
TEMPLATE_SLUG = "template"


class DumpNotReplayable(Exception):
    """The template's dump cannot be replayed exactly under another name."""


def template_schema() -> str:
    return settings.NEXUS_TENANT_TEMPLATE_SCHEMA


@functools.lru_cache(maxsize=1)
def migration_leaves() -> tuple[str, ...]:
    """The latest migration of every installed app, as `app.name`, read from disk once per process."""
    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    return tuple(sorted(f"{app}.{name}" for app, name in graph.leaf_nodes()))


def dump_key() -> str:
    text = "\n".join([FORMAT_VERSION, template_schema(), *migration_leaves()])
    return hashlib.sha256(text.encode()).hexdigest()


# --- turning pg_dump output into something replayable under any name -------------------------------------------

_TOKENS = re.compile(
    r"""(?P<comment>--[^\n]*)
      |(?P<block>/\*.*?\*/)
      |(?P<estring>[Ee]'(?:[^'\\]|\\.|'')*')
      |(?P<literal>'(?:[^']|'')*')
      |(?P<quoted>"(?:[^"]|"")*")
      |(?P<dollar>\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$)
      |(?P<meta>^\\[^\n]*)
      |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
      |(?P<end>;)
    """,
    re.VERBOSE | re.MULTILINE | re.DOTALL,
)
# pg_dump's session settings for a fresh psql session; the replay sets what matters itself, for this
# transaction only (a session-level `set_config('search_path', '', false)` would outlive the replay).
_SESSION_SETTING = re.compile(r"^(SET\s+\w+\s*(=|TO)\s|SELECT\s+pg_catalog\.set_config\()", re.IGNORECASE)
_ALLOWED_META = ("\\restrict ", "\\unrestrict ")
_SETVAL_CALL = re.compile(r"pg_catalog\.setval\(\s*$")


@dataclass(frozen=True)
class CompiledDump:
    """A dump split at every occurrence of the template's name: `schema.join(chunks)` is the SQL for `schema`."""

    key: str
    chunks: tuple[str, ...]

    def sql_for(self, schema_name: str) -> str:
        return schema_name.join(self.chunks)


def compile_dump(sql: str, *, template: str, key: str = "") -> CompiledDump:
    """Split pg_dump output into statements, drop comments, psql meta-commands and the header's session settings,
    and cut it at each place the template's name stands for the schema. Raises DumpNotReplayable when the name
    appears anywhere a substitution could not be exact."""
    statements: list[list[str | None]] = []
    current: list[str | None] = []  # the statement being read; None marks the schema's name
    position = 0

    def text_of(parts: list[str | None]) -> str:
        return "".join(template if part is None else part for part in parts)

    while True:
        match = _TOKENS.search(sql, position)
        if match is None:
            current.append(sql[position:])
            break
        current.append(sql[position : match.start()])
        kind, token, position = match.lastgroup, match.group(), match.end()
        if kind in ("comment", "block"):
            continue
        if kind == "meta":
            if not token.startswith(_ALLOWED_META):
                raise DumpNotReplayable(f"unexpected psql meta-command in the dump: {token[:40]!r}")
            continue
        if kind == "end":
            current.append(";")
            statements.append(current)
            current = []
        elif kind == "word":
            current.append(None if token == template else token)
        elif kind == "quoted":
            current.append(None if token[1:-1].replace('""', '"') == template else token)
        elif kind == "dollar":
            close = sql.find(token, position)
            if close < 0:
                raise DumpNotReplayable("unterminated dollar-quoted string in the dump")
            body = sql[position:close]
            if template in body:
                raise DumpNotReplayable("the template's name appears inside a function body")
            current.append(token + body + token)
            position = close + len(token)
        elif template not in token:  # a string literal without the name
            current.append(token)
        elif kind == "literal" and token.startswith(f"'{template}.") and _SETVAL_CALL.search(text_of(current)):
            current.extend(["'", None, token[len(template) + 1 :]])  # setval('<schema>.<sequence>', …)
        else:
            raise DumpNotReplayable(f"the template's name appears inside a string literal: {token[:60]!r}")
    if text_of(current).strip():
        raise DumpNotReplayable("the dump ends in the middle of a statement")

    chunks: list[list[str]] = [[]]
    in_header = True
    created_schema = False
    for statement in statements:
        text = text_of(statement).strip()
        names_template = None in statement
        if in_header and not names_template:
            if _SESSION_SETTING.match(text):
                continue
            raise DumpNotReplayable(f"unexpected statement before the schema is created: {text[:60]!r}")
        in_header = False
        if text == f"CREATE SCHEMA {template};":
            created_schema = True
        elif _SESSION_SETTING.match(text):
            # pg_dump switches e.g. default_table_access_method between tables: keep it, for this transaction only.
            if names_template or not text.upper().startswith("SET "):
                raise DumpNotReplayable(f"unexpected session setting in the dump: {text[:60]!r}")
            statement = ["SET LOCAL " + text[4:]]
        while statement and statement[0] is not None and not statement[0].strip():
            statement = statement[1:]  # the blank lines left where comments were
        for part in statement:
            if part is None:
                chunks.append([])
            else:
                chunks[-1].append(part)
        chunks[-1].append("\n")
    if not created_schema:
        raise DumpNotReplayable("the dump does not create the template schema")
    return CompiledDump(key=key, chunks=tuple("".join(chunk) for chunk in chunks))


# Settings pg_dump's header would set, applied for this transaction only, then put back as they were: the
# replay may run inside a longer transaction (a test, a caller's atomic block) that must keep its search_path.
_PROLOGUE = (
    "SELECT set_config('nexus.clone_search_path', current_setting('search_path'), true),"
    " set_config('nexus.clone_check_bodies', current_setting('check_function_bodies'), true),"
    " set_config('search_path', '', true),"
    " set_config('check_function_bodies', 'off', true);\n"
)
_EPILOGUE = (
    "SELECT set_config('search_path', current_setting('nexus.clone_search_path'), true),"
    " set_config('check_function_bodies', current_setting('nexus.clone_check_bodies'), true);\n"
)


def schema_clone(*, schema_name: str, dump: CompiledDump) -> None:
    """Create `schema_name` from the dump, in the caller's transaction (a failure leaves nothing behind)."""
    if not connection.in_atomic_block:
        raise RuntimeError("schema_clone must run inside transaction.atomic()")
    with connection.cursor() as cursor:
        cursor.execute(_PROLOGUE + dump.sql_for(schema_name) + _EPILOGUE)


# --- building and finding the dump --------------------------------------------------------------------------------

_compiled: dict[str, CompiledDump] = {}
_building = threading.local()


def _libpq_params() -> dict[str, str]:
    settings_dict = connection.settings_dict
    params = {
        "PGHOST": settings_dict.get("HOST") or "",
        "PGPORT": str(settings_dict.get("PORT") or ""),
        "PGUSER": settings_dict.get("USER") or "",
        "PGPASSWORD": settings_dict.get("PASSWORD") or "",
        "PGDATABASE": settings_dict["NAME"],
        "PGSSLMODE": (settings_dict.get("OPTIONS") or {}).get("sslmode", ""),
    }
    return {name: value for name, value in params.items() if value}


def pg_dump_path() -> str:
    """The configured pg_dump, else the newest versioned one (it must not be older than the server), else PATH's."""
    if settings.NEXUS_PG_DUMP:
        return settings.NEXUS_PG_DUMP

    def major(path: str) -> int:
        found = re.search(r"/postgresql/(\d+)/", path)
        return int(found.group(1)) if found else 0

    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=major, reverse=True)
    found = versioned[0] if versioned else shutil.which("pg_dump")
    if not found:
        raise DumpNotReplayable("pg_dump not found: install the PostgreSQL client or set NEXUS_PG_DUMP")
    return found


def _pg_dump(schema_name: str) -> str:
    env = {**os.environ, **_libpq_params()}
    command = [
        pg_dump_path(),
        f"--schema={schema_name}",
        "--no-owner",
        "--no-privileges",
        "--no-tablespaces",
        "--inserts",
        "--encoding=UTF8",
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise DumpNotReplayable(f"pg_dump failed: {result.stderr.strip()[:500]}")
    return result.stdout


@contextmanager
def _build_lock():
    """One builder at a time across every process and node. Held on a connection of its own: migrating the
    template closes Django's connection (django-tenants' executor does), which would drop a lock held there."""
    params = {name[2:].lower(): value for name, value in _libpq_params().items()}
    params["dbname"] = params.pop("database")
    with psycopg.connect(**params, autocommit=True) as lock_connection:
        lock_connection.execute("SELECT pg_advisory_lock(%s)", [TEMPLATE_BUILD])
        _building.active = True
        try:
            yield
        finally:
            _building.active = False
            lock_connection.execute("SELECT pg_advisory_unlock(%s)", [TEMPLATE_BUILD])


def _template_missing_migrations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name FROM "{template_schema()}".django_migrations')  # noqa: S608 (a setting, not input)
        applied = {f"{app}.{name}" for app, name in cursor.fetchall()}
    return [leaf for leaf in migration_leaves() if leaf not in applied]


def template_ensure(*, migrate: bool = True) -> Tenant:
    """The template's row and schema, created (by migrating) when missing, brought to the latest migrations."""
    use_public()
    template = Tenant.objects.filter(schema_name=template_schema()).first()
    if template is None:
        template = Tenant(slug=TEMPLATE_SLUG, name="Template for new tenant schemas", schema_name=template_schema())
        template.is_active = False
        template.save(verbosity=0)
    if not schema_exists(template_schema()):
        template.create_schema(check_if_exists=True, verbosity=0)
    elif migrate and _template_missing_migrations():
        call_command("migrate_schemas", tenant=True, schema_name=template_schema(), interactive=False, verbosity=0)
    use_public()
    return template


def dump_build(*, migrate_template: bool = True) -> CompiledDump | None:
    """Bring the template up to date, dump it and store the dump under the current key. Outside transactions only.

    Returns None when the template is behind and `migrate_template` is False (the caller is a migration run that
    stopped short of the latest migrations on purpose)."""
    if connection.in_atomic_block:
        raise RuntimeError("a template dump is built outside transactions (pg_dump cannot see uncommitted work)")
    with _build_lock():
        key = dump_key()
        row = SchemaDump.objects.filter(key=key).first()
        if row is not None:  # another process built it while this one waited
            return _remember(key, row.sql)
        template_ensure(migrate=migrate_template)
        missing = _template_missing_migrations()
        use_public()
        if missing:
            if migrate_template:
                raise DumpNotReplayable(f"the template is still missing migrations: {', '.join(missing[:5])}")
            return None
        sql = _pg_dump(template_schema())
        compiled = compile_dump(sql, template=template_schema(), key=key)
        SchemaDump.objects.update_or_create(key=key, defaults={"migrations": list(migration_leaves()), "sql": sql})
        _compiled[key] = compiled
        logger.info("tenant template dumped: %d bytes of SQL, key %s", len(sql), key[:12])
        return compiled


def _remember(key: str, sql: str) -> CompiledDump:
    compiled = _compiled[key] = compile_dump(sql, template=template_schema(), key=key)
    return compiled


def dump_for_creation() -> CompiledDump | None:
    """The dump to create a schema from, building it when it is missing and nothing stops that; None means
    "migrate this schema instead" (cloning off, inside a transaction with no dump yet, or a dump that cannot be
    replayed exactly)."""
    if not settings.NEXUS_TENANT_CLONING:
        return None
    key = dump_key()
    compiled = _compiled.get(key)
    if compiled is not None:
        return compiled
    previous = current_owner()
    use_public()
    try:
        sql = SchemaDump.objects.filter(key=key).values_list("sql", flat=True).first()
        if sql is not None:
            return _remember(key, sql)
        if connection.in_atomic_block or getattr(_building, "active", False):
            return None
        try:
            return dump_build()
        except (DumpNotReplayable, OSError, subprocess.SubprocessError, psycopg.Error) as error:
            # The dump only makes creation faster: without pg_dump, or with a dump that cannot be trusted,
            # tenants are still created, by migrating.
            logger.warning("creating tenant schemas by migrating, no template dump: %s", error)
            return None
    except DumpNotReplayable as error:
        logger.warning("creating tenant schemas by migrating, stored dump refused: %s", error)
        return None
    finally:
        use_tenant(previous)


def on_post_migrate(sender, **kwargs) -> None:
    """After `migrate_schemas` migrated the template, dump it now rather than on the next creation."""
    if (
        not settings.NEXUS_TENANT_CLONING
        or current_schema() != template_schema()
        or connection.in_atomic_block
        or getattr(_building, "active", False)
    ):
        return
    previous = current_owner()
    try:
        use_public()
        if not SchemaDump.objects.filter(key=dump_key()).exists():
            dump_build(migrate_template=False)
    except Exception as error:  # never fail a migration run over a cache
        logger.warning("tenant template not dumped after migrating: %s", error)
    finally:
        use_tenant(previous)


def schema_migrate(tenant: Tenant) -> None:
    """The ordinary path: CREATE SCHEMA and run every tenant migration in it."""
    tenant.create_schema(check_if_exists=False, verbosity=0)
