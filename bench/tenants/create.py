"""Tenant creation: clone (replay of the template's dump) against migrate (CREATE SCHEMA + every migration).

Usage: .venv/bin/python bench/tenants/create.py [--count 20] [--existing N] [--database nexus_bench_tenants] [--json]

Works on a database of its own (created and migrated when missing, kept afterwards so reruns skip the migrate);
every tenant it creates is deleted again (DROP SCHEMA + rows), and the time of that is reported too. Each
creation is the whole service call, `tenant_create(slug=…)`: validation, the Tenant and Domain rows and the
schema, committed.
"""

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(_percentile(values, 0.95), 1),
        "min_ms": round(min(values), 1),
        "max_ms": round(max(values), 1),
    }


def _ensure_database(name: str, url_base: str) -> bool:
    import psycopg

    with psycopg.connect(f"{url_base}/postgres", autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            admin.execute(f'CREATE DATABASE "{name}"')
    return not exists


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20, help="tenants per method (default 20)")
    parser.add_argument("--database", default="nexus_bench_tenants")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--skip-migrate-path", action="store_true", help="measure cloning only")
    parser.add_argument("--existing", type=int, default=0, help="create this many tenants first (deleted at the end)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    created_db = _ensure_database(args.database, args.server)
    os.environ["DATABASE_URL"] = f"{args.server}/{args.database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from apps.core.principal import Principal
    from apps.tenants import cloning
    from apps.tenants.models import SchemaDump, Tenant
    from apps.tenants.services import public_tenant_ensure, tenant_create, tenant_delete

    started = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    migrate_s = time.perf_counter() - started
    connection.set_schema_to_public()
    public_tenant_ensure()
    admin = Principal(kind="system", actor="system:bench", tenant_id=None, tenant_slug=None, role=None, is_platform_admin=True)
    run = uuid.uuid4().hex[:6]

    # The dump: built now if this database has none for the current migrations (first run, or new migrations).
    had_dump = SchemaDump.objects.filter(key=cloning.dump_key()).exists()
    started = time.perf_counter()
    dump = cloning.dump_for_creation()
    first_dump_s = time.perf_counter() - started
    if dump is None:
        print("no dump could be built: see the warning above", file=sys.stderr)
        return 1

    def create_many(label: str) -> tuple[list[float], list[float]]:
        slugs = [f"bench-{run}-{label}-{i}" for i in range(args.count)]
        creating, deleting = [], []
        try:
            for slug in slugs:
                started = time.perf_counter()
                tenant_create(principal=admin, slug=slug)
                creating.append((time.perf_counter() - started) * 1000)
        finally:
            for slug in slugs:
                if Tenant.objects.filter(slug=slug).exists():
                    started = time.perf_counter()
                    tenant_delete(principal=admin, slug=slug, confirm=slug)
                    deleting.append((time.perf_counter() - started) * 1000)
        return creating, deleting

    background = [f"bench-{run}-bg-{i}" for i in range(args.existing)]
    for slug in background:
        tenant_create(principal=admin, slug=slug)
    existing = Tenant.objects.real().count()
    try:
        clone_create, clone_delete = create_many("clone")
        if not args.skip_migrate_path:
            real = cloning.dump_for_creation
            cloning.dump_for_creation = lambda: None  # the ordinary django-tenants path, for comparison
            try:
                migrate_create, migrate_delete = create_many("migrate")
            finally:
                cloning.dump_for_creation = real
    finally:
        for slug in background:
            tenant_delete(principal=admin, slug=slug, confirm=slug)
    result = {
        "database": args.database,
        "database_created": created_db,
        "migrate_s": round(migrate_s, 2),
        "tenants_before": existing,
        "dump": {
            "bytes": len(dump.sql_for(cloning.template_schema())),
            "built_now": not had_dump,
            "first_lookup_ms": round(first_dump_s * 1000, 1),
        },
        "clone": {"create": _summary(clone_create), "delete": _summary(clone_delete)},
    }
    if not args.skip_migrate_path:
        result["migrate"] = {"create": _summary(migrate_create), "delete": _summary(migrate_delete)}
        result["speedup"] = round(result["migrate"]["create"]["median_ms"] / result["clone"]["create"]["median_ms"], 1)
    result["left_over"] = Tenant.objects.real().count() - (existing - len(background))

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"database {args.database} ({existing} tenants before), migrate {result['migrate_s']} s")
        built = "built now" if result["dump"]["built_now"] else "already stored"
        print(f"template dump: {result['dump']['bytes']} bytes, {built}, first lookup {result['dump']['first_lookup_ms']} ms")
        for method in ("clone", "migrate"):
            if method in result:
                for action in ("create", "delete"):
                    s = result[method][action]
                    print(
                        f"{method:8} {action:7} n={s['n']:3}  median {s['median_ms']:7.1f} ms  p95 {s['p95_ms']:7.1f} ms"
                        f"  min {s['min_ms']:7.1f}  max {s['max_ms']:7.1f}"
                    )
        if "speedup" in result:
            print(f"clone is {result['speedup']}x faster than migrate (median)")
        print(f"tenants left over: {result['left_over']}")
    return 0 if result["left_over"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
