"""In-process cost of the rate-limit check per request, against the real Redis (REDIS_URL, default 127.0.0.1:6379/0).

Run: .venv/bin/python bench/ratelimit/overhead.py [--iterations N] [--threads T] [--json]

Each row times N sequential calls (after 500 warm-up calls) and reports wall-clock p50/p95/p99/max in
microseconds, the mean CPU time of the calling thread per call, and, for the rows that run the script, the Redis
server's own CPU per call (from INFO commandstats). Rows:

- `plan_check`: what the middleware adds to an API-key request of a tenant on the `enterprise` plan (the benchmark
  tenant): limits looked up, the key's and the tenant's limits checked and charged in one EVALSHA, the decision
  built. It leaves out only the tenant's plan lookup, a per-process cache hit that the run path pays anyway.
- `limiter.check, refused`: the same for a request that is refused (the refusal also counted for /metrics).
- `redis-py evalsha`: the same script through redis-py's command API, for comparison (why the limiter does not).
- `redis-py ping`: a bare round trip through redis-py.

With `--threads T` (T > 1) the `plan_check` row is also run from T threads at once, N calls each, as granian's
blocking threads would. Target (issue 7): < 1 ms p95. Everything is counted under a key prefix of its own,
deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nexus_site.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from apps.core.principal import Principal  # noqa: E402
from apps.ratelimit.config import DEFAULT_PLANS  # noqa: E402
from apps.ratelimit.limiter import SCRIPT, SCRIPT_SHA, Limit, limiter  # noqa: E402
from apps.ratelimit.policy import plan_check  # noqa: E402

TARGET_P95_US = 1000.0
WARM_UP = 500
MAX_ITERATIONS = 200_000


def _percentile(sorted_values: list[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def _script_usec(client) -> tuple[int, int]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return stats.get("calls", 0), stats.get("usec", 0)


def measure(name: str, call: Callable[[], object], iterations: int, *, redis_client=None) -> dict:
    for _ in range(WARM_UP):
        call()
    before = _script_usec(redis_client) if redis_client is not None else None
    samples = []
    cpu_started = time.thread_time_ns()
    for _ in range(iterations):
        started = time.perf_counter_ns()
        call()
        samples.append((time.perf_counter_ns() - started) / 1000)
    cpu_us = (time.thread_time_ns() - cpu_started) / 1000 / iterations
    samples.sort()
    row = {
        "name": name,
        "iterations": iterations,
        "p50_us": round(_percentile(samples, 0.50), 1),
        "p95_us": round(_percentile(samples, 0.95), 1),
        "p99_us": round(_percentile(samples, 0.99), 1),
        "max_us": round(samples[-1], 1),
        "cpu_us_per_call": round(cpu_us, 1),
        "redis_cpu_us_per_call": None,
    }
    if before is not None:
        calls, usec = _script_usec(redis_client)
        # Other clients' EVALSHA calls during the run would inflate this; the box should be quiet.
        row["redis_cpu_us_per_call"] = round((usec - before[1]) / max(1, calls - before[0]), 1)
    return row


def measure_threads(call: Callable[[], object], iterations: int, threads: int) -> dict:
    samples: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Barrier(threads)

    def run(index: int) -> None:
        for _ in range(WARM_UP // threads + 1):
            call()
        start.wait()
        mine = samples[index]
        for _ in range(iterations):
            started = time.perf_counter_ns()
            call()
            mine.append((time.perf_counter_ns() - started) / 1000)

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    wall = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - wall
    merged = sorted(value for values in samples for value in values)
    return {
        "name": f"plan_check, {threads} threads at once",
        "iterations": len(merged),
        "p50_us": round(_percentile(merged, 0.50), 1),
        "p95_us": round(_percentile(merged, 0.95), 1),
        "p99_us": round(_percentile(merged, 0.99), 1),
        "max_us": round(merged[-1], 1),
        "cpu_us_per_call": None,
        "redis_cpu_us_per_call": None,
        "checks_per_s": round(len(merged) / wall),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20_000, help=f"calls per row (1,000 to {MAX_ITERATIONS:,})")
    parser.add_argument("--threads", type=int, default=3, help="threads for the concurrent row (1: skip it)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    options = parser.parse_args()
    if not 1_000 <= options.iterations <= MAX_ITERATIONS:
        parser.error(f"--iterations must be from 1,000 to {MAX_ITERATIONS:,}")
    if not 1 <= options.threads <= 16:
        parser.error("--threads must be from 1 to 16")

    prefix = f"nexus:bench:rl:{uuid.uuid4().hex[:8]}:"
    settings.NEXUS_RATE_LIMIT_PREFIX = prefix
    settings.NEXUS_RATE_LIMIT_PLANS = DEFAULT_PLANS
    checker = limiter()
    client = checker.client
    principal = Principal(
        kind="api_key", actor="apikey:key_bench", tenant_id=999_999, tenant_slug="bench", role="owner", api_key_id="key_bench"
    )
    refused_limits = (Limit("k:bench-refused", 1, 3600, "api_key"), Limit("t:bench-refused", 1_000_000, 60, "tenant"))
    checker.check(refused_limits)  # spend the only request of the hour: every call below is refused
    evalsha_args = (SCRIPT_SHA, 3, prefix + "k:py", prefix + "t:py", "nexus:bench:rl:refusals", 2, 1)
    evalsha_args += (1_200_000, 60_000_000, "bench|api_key", 1_200_000, 60_000_000, "bench|tenant")
    client.script_load(SCRIPT)
    try:
        first = plan_check(principal, "enterprise")
        if first is None:
            print(f"Redis unreachable at {settings.NEXUS_RATE_LIMIT_REDIS_URL}", file=sys.stderr)
            return 2
        rows = [
            measure(
                "plan_check (enterprise plan)",
                lambda: plan_check(principal, "enterprise"),
                options.iterations,
                redis_client=client,
            ),
            measure(
                "limiter.check, refused",
                lambda: checker.check(refused_limits, tenant="bench"),
                options.iterations,
                redis_client=client,
            ),
            measure("redis-py evalsha", lambda: client.evalsha(*evalsha_args), options.iterations, redis_client=client),
            measure("redis-py ping", client.ping, options.iterations),
        ]
        if options.threads > 1:
            rows.append(
                measure_threads(
                    lambda: plan_check(principal, "enterprise"), options.iterations // options.threads, options.threads
                )
            )
    finally:
        for key in client.scan_iter(prefix + "*"):
            client.delete(key)
        client.delete("nexus:bench:rl:refusals")
        client.hdel("nexus:metrics:rate_limited", "bench|api_key")

    result = {
        "python": platform.python_version(),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} cpus",
        "load_average": os.getloadavg(),
        "target_p95_us": TARGET_P95_US,
        "rows": rows,
    }
    if options.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"python {result['python']}, {result['machine']}, load {', '.join(f'{v:.2f}' for v in result['load_average'])}")
    print(f"{'check':<40} {'calls':>8} {'p50 µs':>8} {'p95 µs':>8} {'p99 µs':>8} {'max µs':>9} {'CPU µs':>7} {'Redis µs':>9}")
    for row in rows:
        cpu = "" if row["cpu_us_per_call"] is None else f"{row['cpu_us_per_call']:.1f}"
        server = "" if row["redis_cpu_us_per_call"] is None else f"{row['redis_cpu_us_per_call']:.1f}"
        print(
            f"{row['name']:<40} {row['iterations']:>8,} {row['p50_us']:>8.1f} {row['p95_us']:>8.1f} {row['p99_us']:>8.1f}"
            f" {row['max_us']:>9.1f} {cpu:>7} {server:>9}"
            + (f"   {row['checks_per_s']:,} checks/s" if "checks_per_s" in row else "")
        )
    verdict = "met" if rows[0]["p95_us"] < TARGET_P95_US else "MISSED"
    print(f"target p95 < {TARGET_P95_US:.0f} µs for plan_check: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
