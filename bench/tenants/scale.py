"""API latency for one tenant with 3 tenants present, then with 1,000 (schema-per-tenant must not slow requests).

Usage: .venv/bin/python bench/tenants/scale.py [--tenants 1000] [--requests 2000] [--database nexus_bench_scale]

Works on a fresh database of its own (dropped at the end). Each sample is a whole WSGI request through the
production handler (middleware, key lookup, tenant switch, the engine, the INSERT of the run) for
POST /api/v1/workflows/hello-world/execute/ of the first tenant, in this process, after a warm-up; the
requests rotate over all tenants' keys in the 1,000-tenant phase first, so PostgreSQL's per-connection
catalog caches see every schema, as a long-lived web worker would.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database", default="nexus_bench_scale")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    import psycopg

    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{args.database}"')
    os.environ["DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.accounts.services import apikey_create
    from apps.core.principal import Principal
    from apps.tenants.services import tenant_create_for_bootstrap
    from apps.workflows.services import workflow_create, workflow_deploy
    from nexus_site.wsgi import application

    call_command("migrate_schemas", interactive=False, verbosity=0)

    def add_tenant(slug: str) -> str:
        connection.set_schema_to_public()
        tenant = tenant_create_for_bootstrap(slug=slug)
        principal = Principal(
            kind="system", actor="bench", tenant_id=tenant.pk, tenant_slug=slug, role="owner", is_platform_admin=True
        )
        connection.set_schema_to_public()
        _, key = apikey_create(principal=principal, tenant=tenant, role="owner")
        connection.set_tenant(tenant)
        workflow_create(principal=principal, tenant_id=tenant.pk, slug="hello-world", template="basic")
        workflow_deploy(principal=principal, tenant_id=tenant.pk, ref="hello-world")
        connection.set_schema_to_public()
        return key

    def request(key: str, i: int) -> float:
        body = json.dumps({"inputs": {"name": f"u{i}"}}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/workflows/hello-world/execute/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Bearer {key}",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.errors": sys.stderr,
        }
        status = []
        started = time.perf_counter()
        response = application(environ, lambda s, h, e=None: status.append(s))
        b"".join(response)
        response.close()
        elapsed = (time.perf_counter() - started) * 1000
        assert status[0].startswith("200"), status
        return elapsed

    def measure(key: str) -> dict:
        for i in range(200):
            request(key, i)
        samples = sorted(request(key, i) for i in range(args.requests))
        return {"median_ms": round(statistics.median(samples), 3), "p95_ms": round(samples[int(0.95 * len(samples))], 3)}

    keys = [add_tenant(f"scale-{n:04d}") for n in range(3)]
    small = measure(keys[0])
    print(f"tenants=3 {small}", flush=True)
    started = time.monotonic()
    keys += [add_tenant(f"scale-{n:04d}") for n in range(3, args.tenants)]
    print(f"created {args.tenants - 3} more tenants in {time.monotonic() - started:.1f} s", flush=True)
    for i, key in enumerate(keys):  # every schema touched by this connection, like a long-lived worker
        request(key, i)
    large = measure(keys[0])
    print(f"tenants={args.tenants} {large}", flush=True)
    ratio = large["median_ms"] / small["median_ms"]
    print(f"median ratio {ratio:.3f} (target <= 1.10); p95 ratio {large['p95_ms'] / small['p95_ms']:.3f}")
    connection.close()
    with psycopg.connect(f"{args.server}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
