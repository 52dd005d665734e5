"""A per-tenant "live subscribers present" flag in Redis, so runs with no session skip events nobody watches.

WebSocket consumers of /ws/tenant/ and /ws/executions/ set the flag with a TTL and refresh it while
connected; publishers read it at most once per PRESENCE_CACHE_S per process. The TTL outlives the last
subscriber by a few heartbeats so that a client reconnecting with `?since=` still finds what it missed.
"""

import threading
import time

import redis
from django.conf import settings

PRESENCE_CACHE_S = 1.0
PRESENCE_TTL_S = 90

_client: redis.Redis | None = None
_client_pid: int | None = None
_cache: dict[str, tuple[float, bool]] = {}
_lock = threading.Lock()


def _key(tenant_slug: str) -> str:
    return f"nexus:subscribers:{tenant_slug}"


def _redis() -> redis.Redis:
    global _client, _client_pid
    import os

    if _client is None or _client_pid != os.getpid():  # a forked worker must not share the parent's socket
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
        _client_pid = os.getpid()
    return _client


def subscribers_present(tenant_slug: str) -> bool:
    now = time.monotonic()
    cached = _cache.get(tenant_slug)
    if cached is not None and cached[0] > now:
        return cached[1]
    with _lock:
        try:
            present = bool(_redis().exists(_key(tenant_slug)))
        except redis.RedisError:
            present = True  # fail open: storing an event too many is cheaper than losing one a client waits for
        _cache[tenant_slug] = (now + PRESENCE_CACHE_S, present)
    return present


def subscribers_mark(tenant_slug: str) -> None:
    """Called by consumers on connect and on every heartbeat."""
    _redis().set(_key(tenant_slug), "1", ex=PRESENCE_TTL_S)
    _cache.pop(tenant_slug, None)


def presence_cache_clear() -> None:
    _cache.clear()
