"""E2E fixtures: a real `nexus up` (HAProxy, granian, daphne, Celery) on free loopback ports and a database of its own,
copied from a migrated template database."""

import contextlib
import functools
import hashlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
NEXUS = str(REPO / ".venv" / "bin" / "nexus")
PYTHON = str(REPO / ".venv" / "bin" / "python")
SERVER = "postgresql://postgres@127.0.0.1:5432"
TEMPLATE_PREFIX = "nexus_e2e_tpl_"
TEMPLATE_KEEP_S = 6 * 3600
# pg_advisory_lock id held while a template database is built ("nexus-e2"): suites running side by side build it once.
_TEMPLATE_LOCK_ID = 0x6E657875732D6532
_TEMPLATE_BUILD = """
import django
django.setup()
from django.core.management import call_command
from apps.tenants.cloning import dump_build
call_command("migrate_schemas", interactive=False, verbosity=0)
dump_build()
"""


def migrations_hash() -> str:
    """What a migrated database depends on: every migration file, and how the tenant template schema is dumped."""
    digest = hashlib.sha256()
    for path in sorted([*REPO.glob("apps/*/migrations/*.py"), REPO / "apps" / "tenants" / "cloning.py"]):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def template_database() -> str:
    """A database with every migration applied and the tenant template schema dumped, and nothing else: no tenant,
    user, key or secret (those belong to each installation and are made by its `nexus up`). Built once, then
    reused by every later session until a migration file changes. Another checkout's suite may be copying an
    older one right now, so a template is dropped only when no session has picked it for TEMPLATE_KEEP_S."""
    name = TEMPLATE_PREFIX + migrations_hash()
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", [_TEMPLATE_LOCK_ID])
        try:
            rows = conn.execute(
                "SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database"
                " WHERE datname LIKE 'nexus_e2e_tpl%%'"
            ).fetchall()
            if name not in {datname for datname, _ in rows}:
                _template_build(conn, name)
            conn.execute(
                sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(f"picked {time.time():.0f}"))
            )
            for stale, comment in rows:
                picked = float(comment.removeprefix("picked ")) if comment.startswith("picked ") else 0.0
                if stale != name and time.time() - picked > TEMPLATE_KEEP_S:
                    with contextlib.suppress(psycopg.errors.ObjectInUse):  # being copied after all: a later session drops it
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(stale)))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", [_TEMPLATE_LOCK_ID])
    return name


def _template_build(conn, name: str) -> None:
    """Migrate under another name, then rename: a template that exists under its final name is complete."""
    building = f"nexus_e2e_tplbuild_{uuid.uuid4().hex[:10]}"
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
    with tempfile.TemporaryDirectory(prefix="nexus-e2e-tpl-") as data_dir:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "nexus_site.settings.local",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{building}",
            "REDIS_URL": f"redis://{os.environ.get('NEXUS_TEST_REDIS', '127.0.0.1:6379')}/5",
            "NEXUS_DATA_DIR": data_dir,
        }
        for variable in ("NEXUS_SECRET_KEY", "NEXUS_JWT_SIGNING_KEY", "NEXUS_MIGRATE_DATABASE_URL"):
            env.pop(variable, None)
        result = subprocess.run(
            [PYTHON, "-c", _TEMPLATE_BUILD], env=env, cwd=REPO, capture_output=True, text=True, timeout=600, check=False
        )
    if result.returncode != 0:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(building)))
        raise RuntimeError(f"building the e2e template database failed:\n{result.stderr[-4000:]}")
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))


@functools.cache
def session_template_database() -> str:
    return template_database()


# What production trusts for seconds, trusted here for a fifth of one, so a test waits CACHE_WAIT_S for another
# process to see a change instead of sleeping through the default lifetimes: API keys, memberships and webhook
# subscriptions, deployments, tenants' limits and isolation; workers look for new strict tenants' queues as often.
FAST_CACHES = {
    "NEXUS_AUTH_CACHE_S": "0.2",
    "NEXUS_DEPLOYMENT_CACHE_S": "0.2",
    "NEXUS_TENANT_LIMITS_CACHE_S": "0.2",
    "NEXUS_QUEUE_FOLLOW_S": "0.5",
}
CACHE_WAIT_S = 0.5


def free_port_block(size: int = 3) -> int:
    """A base port with `size` consecutive free ports after it (proxy, web, realtime)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + size >= 65000:
            continue
        ok = True
        for port in range(base, base + size):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port block")


def http(method: str, url: str, body=None, key: str | None = None, raw: bytes | None = None, timeout: float = 30):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        payload = error.read()
        return error.code, json.loads(payload) if payload else None


class Installation:
    """One Nexus installation for a test: its own database, Redis database, data dir and ports."""

    def __init__(self, tmp: Path, redis_db: int):
        self.port = free_port_block()
        self.db_name = f"nexus_e2e_{uuid.uuid4().hex[:10]}"
        # NEXUS_TEST_REDIS (host:port) lets two suites run side by side, each against its own Redis server.
        self.redis_url = f"redis://{os.environ.get('NEXUS_TEST_REDIS', '127.0.0.1:6379')}/{redis_db}"
        self.data_dir = tmp / "data"
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "nexus_site.settings.local",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{self.db_name}",
            "REDIS_URL": self.redis_url,
            "NEXUS_PORT": str(self.port),
            "NEXUS_DATA_DIR": str(self.data_dir),
            "NEXUS_TENANT": "default",
            **FAST_CACHES,
        }
        self.env.pop("NEXUS_USER", None)
        self.env.pop("NEXUS_SESSION", None)
        # A zero-configuration start: the installation makes its own keys in its data dir (the test settings put
        # their test-only key into this process's environment; the local settings refuse it).
        self.env.pop("NEXUS_SECRET_KEY", None)
        self.env.pop("NEXUS_JWT_SIGNING_KEY", None)
        self.log_path = tmp / "nexus-up.log"
        self.process: subprocess.Popen | None = None
        self.database_ready = False
        redis.Redis.from_url(self.redis_url).flushdb()

    def database_from_template(self) -> None:
        """Copy the migrated template, unless the database exists (a restart, or a test that made its own)."""
        if self.database_ready:
            return
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.db_name]).fetchone() is None:
                create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
                try:
                    conn.execute(create.format(sql.Identifier(self.db_name), sql.Identifier(session_template_database())))
                except psycopg.errors.InvalidCatalogName:  # dropped since this session picked it: pick (build) again
                    session_template_database.cache_clear()
                    conn.execute(create.format(sql.Identifier(self.db_name), sql.Identifier(session_template_database())))
        self.database_ready = True

    def start(self, *extra: str, timeout: float = 90) -> float:
        self.database_from_template()
        started = time.monotonic()
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [NEXUS, "up", *extra], env=self.env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nexus up exited {self.process.returncode}:\n{self.log_path.read_text()[-4000:]}")
            try:
                status, body = http("GET", f"{self.base_url}/health", timeout=2)
                if status == 200 and body["healthy"]:
                    return time.monotonic() - started
            except Exception:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"nexus up not healthy after {timeout} s:\n{self.log_path.read_text()[-4000:]}")

    @property
    def credentials(self) -> dict:
        return json.loads((self.data_dir / "credentials.json").read_text())

    def cli(self, *args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        self.database_from_template()  # `nexus setup` before `nexus up` finds it migrated too
        return subprocess.run(
            [NEXUS, *args], env={**self.env, **(env or {})}, cwd=REPO, capture_output=True, text=True, timeout=timeout
        )

    def cli_json(self, *args: str, **kwargs):
        result = self.cli(*args, "--json", **kwargs)
        assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stderr}"
        return json.loads(result.stdout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()

    def drop(self) -> None:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [self.db_name])
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}"')


class Mailbox:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        mailbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                import email

                message = email.message_from_bytes(envelope.content)
                mailbox.messages.append({"to": envelope.rcpt_tos, "message": message})
                return "250 OK"

        self.port = free_port_block(1)
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture(scope="session")
def mailbox():
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture(scope="session")
def nexus(tmp_path_factory, mailbox):
    """A running installation shared by the e2e tests of one session, sending mail to `mailbox` and
    allowed to call HTTP servers and webhook receivers on loopback (the tests run their own)."""
    # Under pytest-xdist every worker has its own shared installation; the modules' own installations use Redis
    # databases 6 to 12, and the unit/integration tiers 0 to 3 (nexus_site/settings/test.py).
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    installation = Installation(tmp_path_factory.mktemp("nexus"), redis_db=(5, 13, 14, 15)[worker])
    installation.env.update(
        {
            "NEXUS_EMAIL_HOST": "127.0.0.1",
            "NEXUS_EMAIL_PORT": str(mailbox.port),
            "NEXUS_HTTP_ALLOW_PRIVATE": "true",
            "NEXUS_WEBHOOK_ALLOW_PRIVATE": "true",
            # A receiver that is down is retried within seconds here (production backs off up to an hour).
            "NEXUS_WEBHOOK_BACKOFF_BASE_S": "0.5",
            "NEXUS_WEBHOOK_BACKOFF_MAX_S": "2",
            # Few enough that tests/e2e/test_waits.py can fill them (the default is 4).
            "NEXUS_WAIT_MAX_PER_TENANT": "2",
            # A new application's limit stays below tests/e2e/test_integrations.py's burst of 150, so part of the
            # burst is refused, but the refused part refills in about ten seconds, not the half minute of 100/min.
            "NEXUS_RATE_LIMIT_PLANS": json.dumps({"enterprise": {"app": 125}, "standard": {"app": 125}}),
        }
    )
    try:
        installation.startup_s = installation.start()
        yield installation
    finally:
        installation.stop()
        installation.drop()
