"""A per-tenant "live subscribers present" flag in Redis, so runs with no session skip events nobody watches.

The event hub of each daphne process (apps/realtime/hub.py) sets the flag with a TTL for every tenant that has
/ws/tenant/ or /ws/executions/ subscribers there, when the first one joins and then once per heartbeat: one
write per tenant and process, whatever the number of sockets. Publishers read it at most once per
PRESENCE_CACHE_S per process. The TTL outlives the last subscriber by a few heartbeats so that a client
reconnecting with `?since=` still finds what it missed. (Redis's own subscriber count, PUBSUB NUMSUB, drops
to zero the moment the last socket closes, which is exactly when a reconnecting client needs the events.)
"""

import os
import threading
from collections.abc import Iterable

import redis
import redis.asyncio
from django.conf import settings

from apps.core.cache import TTLCache

PRESENCE_CACHE_S = 1.0
PRESENCE_TTL_S = 90

_client: redis.Redis | None = None
_client_pid: int | None = None
_cache = TTLCache(ttl_s=PRESENCE_CACHE_S)
_lock = threading.Lock()


def _key(tenant_slug: str) -> str:
    return f"nexus:subscribers:{tenant_slug}"


def _redis() -> redis.Redis:
    global _client, _client_pid

    if _client is None or _client_pid != os.getpid():  # a forked worker must not share the parent's socket
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1.0, socket_connect_timeout=1.0)
        _client_pid = os.getpid()
    return _client


def subscribers_present(tenant_slug: str) -> bool:
    cached = _cache.get(tenant_slug)
    if cached is not None:
        return cached
    with _lock:
        try:
            present = bool(_redis().exists(_key(tenant_slug)))
        except redis.RedisError:
            present = True  # fail open: storing an event too many is cheaper than losing one a client waits for
        _cache.set(tenant_slug, present)
    return present


def subscribers_mark(tenant_slug: str) -> None:
    _redis().set(_key(tenant_slug), "1", ex=PRESENCE_TTL_S)
    _cache.forget(tenant_slug)


async def subscribers_mark_async(client: redis.asyncio.Redis, tenant_slugs: Iterable[str]) -> None:
    """The hub's form: one round trip for every tenant it watches."""
    slugs = list(tenant_slugs)
    async with client.pipeline(transaction=False) as pipe:
        for slug in slugs:
            pipe.set(_key(slug), "1", ex=PRESENCE_TTL_S)
        await pipe.execute()
    for slug in slugs:
        _cache.forget(slug)


def presence_cache_clear() -> None:
    _cache.clear()


def subscribers_forget(tenant_slug: str) -> None:
    """Drop the flag now (tests that need a tenant nobody watches; a live subscriber sets it again)."""
    _redis().delete(_key(tenant_slug))
    _cache.forget(tenant_slug)
