"""Webhook delivery throughput: deliveries/s with 2 Celery worker processes to a receiver on loopback.

Usage: .venv/bin/python bench/webhooks/throughput.py [--count 2000] [--concurrency 2] [--timeout 180] [--json]

Works on a database of its own (nexus_bench_webhooks: created and migrated when missing, kept for reruns; the
deliveries and events it writes are deleted at the end) and on Redis database 13 (broker and results; emptied
first). Starts one `celery worker -Q webhooks --concurrency=2` (two pool processes, as the Procfile's worker)
and a receiver in a process of its own (http.server, threads, HTTP/1.1 keep-alive) that verifies the Standard
Webhooks signature of every request and answers 200. Then publishes COUNT events in one tenant with one
subscribed application through publish() (the delivery rows written in the publishing transaction, one message
each once it commits), and waits until every delivery is `delivered`:

    deliveries/s = COUNT / (last delivered_at − commit)

Also reported: the publish rate (events/s stored with their deliveries, before the commit), the latency_ms the
rows recorded (p50/p95), attempts, what the receiver counted, and the worker's CPU (its process group) per delivery.
Everything is bounded by --timeout; the worker and the receiver are stopped on exit.
"""

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DATABASE = "nexus_bench_webhooks"
SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_DB = int(os.environ.get("WEBHOOK_BENCH_REDIS_DB", 13))
TICKS = os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group, from /proc."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …, utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / TICKS


def _receiver(port_box, secret: str, counts) -> None:
    """The receiver process: verify, count, answer 200."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from standardwebhooks import Webhook

    verifier = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as most receivers (and proxies in front of them) do

        def do_POST(self):  # noqa: N802 (http.server's hook name)
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                verifier.verify(body, dict(self.headers))
                with counts.get_lock():
                    counts[0] += 1
            except Exception:
                with counts.get_lock():
                    counts[1] += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_box.value = server.server_address[1]
    server.serve_forever()


def _ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
            admin.execute(f'CREATE DATABASE "{DATABASE}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="events, one delivery each (default 2000)")
    parser.add_argument("--concurrency", type=int, default=2, help="worker pool processes (default 2)")
    parser.add_argument("--timeout", type=float, default=180.0, help="give up after this many seconds (default 180)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.count <= 20000:
        parser.error("--count must be from 1 to 20000")
    deadline = time.monotonic() + args.timeout

    _ensure_database()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "nexus_site.settings.local",
        "DATABASE_URL": f"{SERVER}/{DATABASE}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "NEXUS_WEBHOOK_ALLOW_PRIVATE": "true",
    }
    env.pop("CELERY_BROKER_URL", None)
    env.pop("CELERY_RESULT_BACKEND", None)
    os.environ.update(env)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    import redis
    from django.core.management import call_command
    from django.db import connection, transaction

    from apps.core.ids import new_id
    from apps.events.models import Event
    from apps.events.services import publish
    from apps.integrations.models import Application, WebhookDelivery
    from apps.integrations.secrets import new_salt, webhook_secret
    from apps.integrations.subscriptions import webhook_subscribers_forget
    from apps.tenants.models import Tenant
    from apps.tenants.services import public_tenant_ensure, tenant_create_for_bootstrap
    from nexus_site.celery import app as celery_app

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    call_command("migrate_schemas", interactive=False, verbosity=0)
    connection.set_schema_to_public()
    public_tenant_ensure()
    tenant = Tenant.objects.filter(slug="bench-webhooks").first() or tenant_create_for_bootstrap(slug="bench-webhooks")
    connection.set_schema_to_public()
    Application.objects.filter(tenant=tenant).delete()
    salt = new_salt()
    app = Application(id=new_id("app"), tenant=tenant, name="bench", webhook_events=["*"], webhook_secret_salt=salt)

    counts = multiprocessing.Array("l", [0, 0])
    port_box = multiprocessing.Value("i", 0)
    receiver = multiprocessing.Process(
        target=_receiver, args=(port_box, webhook_secret(app_id=app.id, salt=salt), counts), daemon=True
    )
    receiver.start()
    while not port_box.value:
        time.sleep(0.01)
    app.webhook_url = f"http://127.0.0.1:{port_box.value}/hooks"
    app.created_by = "bench"
    app.save(force_insert=True)
    webhook_subscribers_forget()

    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / "nexus-bench-webhooks-worker.log", "wb")  # noqa: SIM115
    worker = subprocess.Popen(
        [
            str(REPO / ".venv/bin/celery"),
            "-A",
            "nexus_site",
            "worker",
            "-Q",
            "webhooks",
            f"--concurrency={args.concurrency}",
            "--hostname=bench-webhooks@%h",
            "--loglevel=WARNING",
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        while not celery_app.control.ping(destination=[f"bench-webhooks@{os.uname().nodename}"], timeout=0.5):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("the worker did not start; see nexus-bench-webhooks-worker.log")
        worker_cpu_start = _group_cpu_s(worker.pid)

        connection.set_tenant(tenant)
        published = time.perf_counter()
        with transaction.atomic():
            for n in range(args.count):
                publish(type="execution.completed", source="worker", data={"n": n, "execution_id": f"run_bench_{n}"})
            commit, commit_wall = time.perf_counter(), time.time()
        enqueued = time.perf_counter()  # the commit, then one message per delivery (on_commit)
        connection.set_schema_to_public()

        deliveries = WebhookDelivery.objects.filter(application_id=app.id)
        while deliveries.filter(status="delivered").count() < args.count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: {deliveries.filter(status='delivered').count()} of {args.count} delivered")
            time.sleep(0.1)
        last = max(deliveries.values_list("delivered_at", flat=True)).timestamp()
        worker_cpu = _group_cpu_s(worker.pid) - worker_cpu_start
        rows = list(deliveries.values_list("latency_ms", "attempts"))
        latencies = [latency for latency, _ in rows]
        elapsed = last - commit_wall
        result = {
            "count": args.count,
            "worker_processes": args.concurrency,
            "deliveries_per_s": round(args.count / elapsed, 1),
            "elapsed_s": round(elapsed, 2),
            "publish_events_per_s": round(args.count / (commit - published), 1),
            "enqueue_s": round(enqueued - commit, 2),
            "latency_ms_p50": round(statistics.median(latencies), 2),
            "latency_ms_p95": round(_percentile(latencies, 0.95), 2),
            "attempts_max": max(attempts for _, attempts in rows),
            "receiver_verified": counts[0],
            "receiver_bad_signatures": counts[1],
            "worker_cpu_s": round(worker_cpu, 2),
            "worker_cpu_ms_per_delivery": round(worker_cpu * 1000 / args.count, 2),
        }
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        receiver.terminate()
        log.close()
        connection.set_schema_to_public()
        Application.objects.filter(tenant=tenant).delete()  # and its deliveries
        connection.set_tenant(tenant)
        Event.objects.all().delete()
        connection.set_schema_to_public()

    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"webhooks: {result['count']} deliveries with {result['worker_processes']} worker processes in "
            f"{result['elapsed_s']} s = {result['deliveries_per_s']} deliveries/s "
            f"(publish {result['publish_events_per_s']} events/s, enqueue {result['enqueue_s']} s after commit; "
            f"latency p50 {result['latency_ms_p50']} ms, p95 {result['latency_ms_p95']} ms; "
            f"max attempts {result['attempts_max']}; receiver verified {result['receiver_verified']}, "
            f"bad signatures {result['receiver_bad_signatures']}; worker CPU "
            f"{result['worker_cpu_ms_per_delivery']} ms/delivery)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
