"""`nexus up`: check services, migrate, bootstrap, then run every Procfile process until Ctrl-C or SIGTERM."""

import json
import os
import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from django.conf import settings
from django.core.management import call_command
from honcho.environ import parse_procfile
from honcho.manager import Manager
from honcho.printer import Printer
from psycopg import sql
from rich.console import Console
from rich.panel import Panel

from apps.cli.verbs import leaf
from apps.core.errors import ApplicationError
from apps.ops.bootstrap import bootstrap
from apps.ops.database_roles import migration_connection
from apps.ops.redis_client import redis_client

HEALTH_WAIT_S = 120
REPO = Path(__file__).resolve().parents[3]


def register(verbs) -> None:
    up = leaf(verbs, "up", start, "check services, migrate, bootstrap and start every process of the Procfile")
    up.add_argument("--only", default="", help="comma-separated Procfile processes to start (default: all)")
    leaf(verbs, "setup", setup, "check services, create the database, migrate and bootstrap, then exit")


def ensure_database() -> None:
    """Create the configured database when it does not exist yet (zero-configuration first start)."""
    db = settings.DATABASES["default"]
    params: dict[str, Any] = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"] or "postgres",
        "dbname": "postgres",
    }
    if db.get("PASSWORD"):
        params["password"] = db["PASSWORD"]
    try:
        with psycopg.connect(**params, autocommit=True, connect_timeout=5) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]).fetchone() is None:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
    except psycopg.Error as error:
        raise ApplicationError(
            f"PostgreSQL at {params['host']}:{params['port']} is not usable: {error}", code="database_unavailable"
        ) from None


def write_credentials(credentials: dict, url: str) -> Path:
    path = Path(settings.NEXUS_DATA_DIR) / "credentials.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({**credentials, "url": url}, handle, indent=2)
    return path


def process_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = f"{bin_dir}:/usr/sbin:/sbin:{env.get('PATH', '')}"
    env.setdefault("NEXUS_HOST", settings.NEXUS_HOST)
    env["NEXUS_PORT"] = str(port)
    env.setdefault("NEXUS_WEB_PORT", str(port + 1))
    env.setdefault("NEXUS_REALTIME_PORT", str(port + 2))
    env.setdefault("NEXUS_WEB_WORKERS", "2")
    env.setdefault("NEXUS_WEB_THREADS", "3")
    env.setdefault("NEXUS_WORKER_CONCURRENCY", "2")
    env["NEXUS_DATA_DIR"] = str(settings.NEXUS_DATA_DIR)
    env.setdefault("DJANGO_SETTINGS_MODULE", os.environ.get("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local"))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def cli_path_hint(path: str | None = None, repo: Path = REPO) -> str:
    """The banner's CLI line: `nexus` as typed resolves to this checkout's command (deploy/scripts/setup.sh links it
    into ~/.local/bin when that is on the PATH), or how to put it there."""
    command = repo / ".venv" / "bin" / "nexus"
    found = shutil.which("nexus", path=path if path is not None else os.environ.get("PATH", ""))
    if found and Path(found).resolve() == command.resolve():
        return f"CLI        nexus   (on your PATH: {found})"
    other = f"; `nexus` on your PATH is another one: {found}" if found else ""
    return f'CLI        {command}   (put it on your PATH: export PATH="{command.parent}:$PATH"{other})'


def _announce_when_healthy(
    console: Console, base_url: str, started: float, credentials: dict | None, credentials_path: Path
) -> None:
    deadline = time.monotonic() + HEALTH_WAIT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:  # noqa: S310 (our own http URL)
                if json.load(response).get("healthy"):
                    break
        except Exception:
            pass
        time.sleep(0.2)
    else:
        console.print(f"[red]Nexus did not become healthy within {HEALTH_WAIT_S} s: see the process output above[/]")
        return
    ws_url = base_url.replace("http://", "ws://")
    lines = [
        f"healthy after {time.monotonic() - started:.1f} s",
        f"API        {base_url}/api/v1/   (docs {base_url}/api/docs/)",
        f"WebSocket  {ws_url}/ws/tenant/   (and /ws/sessions/<ses_id>/, /ws/executions/<run_id>/)",
        f"MCP        {base_url}/mcp   (nexus mcp config prints client settings)",
        f"Console    {base_url}/admin/",
        f"Health     {base_url}/health",
        cli_path_hint(),
    ]
    if credentials:
        lines += [
            "",
            "[bold]First credentials (shown once; also in " + str(credentials_path) + "):[/]",
            f"  admin user  {credentials['username']} / {credentials['password']}",
            f"  API key     {credentials['api_key']}  (tenant {credentials['tenant']}, role owner)",
        ]
    else:
        lines += ["", f"Credentials from the first start are in {credentials_path}"]
    console.print(Panel("\n".join(lines), title="Nexus is up"))


def prepare() -> tuple[dict | None, Path]:
    """Everything before the processes start; safe to repeat. Returns credentials created this time, if any.
    With NEXUS_MIGRATE_DATABASE_URL, as the role that owns the schema; the processes then serve as DATABASE_URL's."""
    try:
        redis_client().ping()
    except Exception as error:
        raise ApplicationError(f"Redis at {settings.REDIS_URL} is not reachable: {error}", code="redis_unavailable") from None
    with migration_connection():
        ensure_database()
        call_command("migrate_schemas", interactive=False, verbosity=0)
        credentials = bootstrap(default_tenant=settings.NEXUS_DEFAULT_TENANT)
    credentials_path = Path(settings.NEXUS_DATA_DIR) / "credentials.json"
    if credentials:
        write_credentials(credentials, f"http://{settings.NEXUS_HOST}:{settings.NEXUS_PORT}")
    return credentials, credentials_path


def setup(ctx, options) -> None:
    credentials, path = prepare()
    data = {"status": "ready", "credentials_file": str(path), "created_credentials": credentials is not None}
    ctx.emit(data, lambda out, d: out.print(f"ready; first credentials in {d['credentials_file']}"))


def start(ctx, options) -> None:
    started = time.monotonic()
    console = Console(stderr=False, highlight=False)
    credentials, credentials_path = prepare()
    port = settings.NEXUS_PORT
    base_url = f"http://{settings.NEXUS_HOST}:{port}"
    env = process_env(port)
    procfile = parse_procfile((Path(settings.BASE_DIR) / "Procfile").read_text())
    only = {name for name in options["only"].split(",") if name}
    manager = Manager(Printer(sys.stdout))
    for name, command in procfile.processes.items():
        if not only or name in only:
            manager.add_process(name, command, env=env, cwd=str(settings.BASE_DIR))
    threading.Thread(
        target=_announce_when_healthy, args=(console, base_url, started, credentials, credentials_path), daemon=True
    ).start()
    manager.loop()
    sys.exit(manager.returncode)
