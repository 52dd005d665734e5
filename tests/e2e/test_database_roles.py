"""`nexus up` with the two PostgreSQL roles of docs/deploy-postgres.md (made by running that page's SQL): migrations
and bootstrap as the owner, every process serving as the less privileged role, which cannot switch the audit
trigger off. Tenants created while serving are migrated by the owner later."""

import re
import uuid

import psycopg
import pytest
from psycopg import sql

from tests.e2e.conftest import REPO, Installation, http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SERVER = "postgresql://postgres@127.0.0.1:5432"


def documented_statements(*, owner: str, app: str, database: str) -> list[tuple[str, str]]:
    """The page's SQL, with its names replaced: (database to run on, statement) pairs, `\\connect` switching."""
    text = (REPO / "docs" / "deploy-postgres.md").read_text()
    block = re.search(r"```sql\n(.*?)```", text, re.S).group(1)
    block = re.sub(r"\bnexus_owner\b", owner, block)
    block = re.sub(r"\bnexus_app\b", app, block)
    block = re.sub(r"\bDATABASE nexus\b", f"DATABASE {database}", block)
    block = block.replace("\\connect nexus", f"\\connect {database}")
    current, statements = "postgres", []
    for chunk in block.split(";\n"):
        lines = [line for line in chunk.splitlines() if line.strip() and not line.strip().startswith("--")]
        for line in [line for line in lines if line.startswith("\\connect ")]:
            current = line.split()[1]
        body = "\n".join(line for line in lines if not line.startswith("\\connect ")).strip()
        if body:
            statements.append((current, body))
    return statements


@pytest.fixture
def roles_installation(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    owner, app, database = f"nexus_owner_{suffix}", f"nexus_app_{suffix}", f"nexus_e2e_roles_{suffix}"
    statements = documented_statements(owner=owner, app=app, database=database)
    assert len(statements) >= 10 and {where for where, _ in statements} == {"postgres", database}
    for where, statement in statements:
        with psycopg.connect(f"{SERVER}/{where}", autocommit=True) as conn:
            conn.execute(statement)
    installation = Installation(tmp_path, redis_db=12)
    installation.db_name = database
    installation.env["DATABASE_URL"] = f"postgres://{app}@127.0.0.1:5432/{database}"
    installation.env["NEXUS_MIGRATE_DATABASE_URL"] = f"postgres://{owner}@127.0.0.1:5432/{database}"
    try:
        yield installation, owner, app
    finally:
        installation.stop()
        installation.drop()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            for role in (owner, app):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_nexus_serves_as_a_role_that_cannot_disable_the_audit_trigger(roles_installation):
    installation, owner, app = roles_installation
    installation.start()
    key = installation.credentials["api_key"]

    # Serving works: a workflow, a run, a tenant made at run time (its schema owned by the serving role).
    workflow_id = installation.cli_json("create", "workflow", "hello-world", "--template=basic")["workflow_id"]
    assert installation.cli_json("deploy", workflow_id)["status"] == "deployed"
    status, body = http(
        "POST", f"{installation.base_url}/api/v1/workflows/{workflow_id}/execute/", {"inputs": {"name": "Roles"}}, key=key
    )
    assert status == 200 and body["result"] == {"message": "Hello, Roles!"}, body
    installation.cli_json("tenant", "create", "made-while-serving")
    # The owner migrates everything again, the serving role's schemas included.
    setup = installation.cli("setup")
    assert setup.returncode == 0, setup.stderr[-3000:]
    assert installation.cli_json("audit", "verify")["valid"] is True

    database = installation.db_name
    with psycopg.connect(f"{SERVER}/{database}", autocommit=True) as admin:
        assert admin.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'audit_auditevent'").fetchone() == (owner,)
        connected = {row[0] for row in admin.execute("SELECT usename FROM pg_stat_activity WHERE datname = %s", [database])}
    assert app in connected and owner not in connected  # granian, daphne and Celery connect as the serving role

    with psycopg.connect(f"postgresql://{app}@127.0.0.1:5432/{database}", autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table audit_auditevent"):
            conn.execute("ALTER TABLE public.audit_auditevent DISABLE TRIGGER ALL")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="session_replication_role"):
            conn.execute("SET session_replication_role = replica")
