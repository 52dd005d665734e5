"""Health of this node: database, Redis, and live Celery workers."""

import os
import socket
import time

from django.conf import settings
from django.db import connection

from apps.ops.redis_client import redis_client

WORKER_KEY_PREFIX = "nexus:workers:"
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


def _workers() -> dict:
    # COUNT 1000: the scan walks the whole keyspace (rate-limit state included), 10 keys per round trip by default.
    keys = redis_client().scan_iter(WORKER_KEY_PREFIX + "*", count=1000)
    names = sorted(key.decode()[len(WORKER_KEY_PREFIX) :] for key in keys)
    if not names:
        raise RuntimeError("no Celery worker has reported in the last 15 s")
    return {"count": len(names), "names": names}


def health_check() -> dict:
    """`down` when the database or Redis is unreachable; `degraded` without workers (queued runs wait)."""
    checks = {"database": _timed(_database), "redis": _timed(_redis)}
    checks["workers"] = _timed(_workers) if checks["redis"]["ok"] else {"ok": False, "error": "redis unreachable"}
    if not (checks["database"]["ok"] and checks["redis"]["ok"]):
        status = "down"
    elif not checks["workers"]["ok"]:
        status = "degraded"
    else:
        status = "healthy"
    return {"healthy": status == "healthy", "status": status, "checks": checks, "node": node_info()}


def worker_heartbeat(hostname: str) -> None:
    redis_client().set(WORKER_KEY_PREFIX + hostname, str(time.time()), ex=WORKER_TTL_S)


def worker_gone(hostname: str) -> None:
    redis_client().delete(WORKER_KEY_PREFIX + hostname)
