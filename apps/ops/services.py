"""Health of this node: database, Redis, and live Celery workers; and the workers' liveness records.

Liveness is one Redis sorted set, worker hostname -> time of its last heartbeat: counting the live workers is one
ZCOUNT (O(log n)), whatever else Redis holds. (It used to be a key per worker found by SCAN, which walked the whole
keyspace, rate-limit state included, on every unauthenticated /health call.)
"""

import os
import socket
import time

from django.conf import settings
from django.db import connection

from apps.ops.redis_client import redis_client

WORKERS_KEY = "nexus:workers"
WORKER_TTL_S = 15


def node_info() -> dict:
    node_id = settings.NEXUS_NODE_ID or f"{socket.gethostname()}:{settings.NEXUS_PORT}"
    return {"id": node_id, "region": settings.NEXUS_REGION, "version": settings.NEXUS_VERSION, "pid": os.getpid()}


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        extra = check() or {}
        return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), **extra}
    except Exception as error:  # a health check reports failures, it never raises them
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _redis() -> None:
    redis_client().ping()


def workers_live_count() -> int:
    """Workers whose last heartbeat is less than WORKER_TTL_S old: one ZCOUNT."""
    return redis_client().zcount(WORKERS_KEY, time.time() - WORKER_TTL_S, "+inf")


def workers_live() -> list[str]:
    """The hostnames of the live workers, sorted."""
    members = redis_client().zrangebyscore(WORKERS_KEY, time.time() - WORKER_TTL_S, "+inf")
    return sorted(member.decode() for member in members if isinstance(member, bytes))  # the client does not decode


def _workers() -> dict:
    names = workers_live()
    if not names:
        raise RuntimeError(f"no Celery worker has reported in the last {WORKER_TTL_S} s")
    return {"count": len(names), "names": names}


def _status(*, database: bool, redis: bool, workers: bool) -> str:
    """`down` when the database or Redis is unreachable; `degraded` without workers (queued runs wait)."""
    if not (database and redis):
        return "down"
    return "healthy" if workers else "degraded"


def health_summary() -> dict:
    """What anyone may know, cheaply (HAProxy asks every 2 s): the status and which checks pass. One `SELECT 1`
    and one ZCOUNT; no host names, pids, latencies or error texts."""
    database = _timed(_database)["ok"]
    try:
        workers = workers_live_count() > 0
        redis = True
    except Exception:  # Redis unreachable: reported as a failed check
        redis = workers = False
    status = _status(database=database, redis=redis, workers=workers)
    checks = {"database": {"ok": database}, "redis": {"ok": redis}, "workers": {"ok": workers}}
    return {"healthy": status == "healthy", "status": status, "checks": checks}


def health_check() -> dict:
    """The detailed report for operators (platform admins, `nexus health`): latencies, errors, workers, node."""
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    checks["workers"] = _timed(_workers) if checks["redis"]["ok"] else {"ok": False, "error": "redis unreachable"}
    status = _status(database=checks["database"]["ok"], redis=checks["redis"]["ok"], workers=checks["workers"]["ok"])
    return {"healthy": status == "healthy", "status": status, "checks": checks, "node": node_info()}


def worker_heartbeat(hostname: str) -> None:
    now = time.time()
    pipe = redis_client().pipeline(transaction=False)
    pipe.zadd(WORKERS_KEY, {hostname: now})
    pipe.zremrangebyscore(WORKERS_KEY, "-inf", now - WORKER_TTL_S)  # workers killed without saying goodbye
    pipe.expire(WORKERS_KEY, WORKER_TTL_S * 4)  # and the set itself once no worker is left
    pipe.execute()


def worker_gone(hostname: str) -> None:
    redis_client().zrem(WORKERS_KEY, hostname)
