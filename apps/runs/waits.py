"""Wait slots: how many callers may wait on a run at once, per process and per tenant.

A caller that waits (`wait=true`) holds a web thread for up to NEXUS_WAIT_TIMEOUT_S; a web process has only
NEXUS_WEB_THREADS of them, so without a cap a handful of callers waiting on slow workflows stops the REST API
for everyone. A wait first takes a slot: one of NEXUS_WAIT_MAX_PER_PROCESS in this process (a counter under a
lock) and one of NEXUS_WAIT_MAX_PER_TENANT across all processes (a Redis sorted set per tenant: member a
random token, score the lease's expiry on Redis's clock). When either is full the caller does not wait: it
gets the run as it is (202 and the run id), exactly as when a wait runs out, and the run goes on.

Leases last the wait budget plus a margin, so a process killed mid-wait frees its tenant slots by itself.
Without Redis the tenant cap fails closed (no wait): the caller loses nothing but the convenience of waiting,
while failing open would let one tenant take every thread exactly when the platform is degraded.
"""

import logging
import os
import threading

import redis
from django.conf import settings
from django.db import connection

from apps.ops.redis_client import redis_client

logger = logging.getLogger(__name__)

LEASE_MARGIN_S = 10.0
CAPPED = "capped"

# KEYS: the tenant's waits. ARGV: token, cap, lease (ms). Expired leases go first. 1: taken; 0: full.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"""
_take_script = None

_process_lock = threading.Lock()
_process_waits = 0


def waits_key(tenant_id: int) -> str:
    # The database name keeps installations (and test databases) that share one Redis apart.
    return f"nexus:{connection.settings_dict['NAME']}:waits:{tenant_id}"


def _process_take() -> bool:
    global _process_waits
    with _process_lock:
        if _process_waits >= settings.NEXUS_WAIT_MAX_PER_PROCESS:
            return False
        _process_waits += 1
        return True


def _process_release() -> None:
    global _process_waits
    with _process_lock:
        _process_waits -= 1


def tenant_wait_take(*, tenant_id: int, lease_s: float) -> str | None:
    """Lease one of the tenant's wait slots for `lease_s` seconds: its token, or None when all are taken."""
    global _take_script
    cap = settings.NEXUS_WAIT_MAX_PER_TENANT
    if cap <= 0:
        return None
    token = os.urandom(8).hex()
    try:
        if _take_script is None:
            _take_script = redis_client().register_script(_TAKE)
        taken = _take_script(keys=[waits_key(tenant_id)], args=[token, cap, int(lease_s * 1000)])
    except redis.RedisError as error:
        logger.warning("tenant %s: a wait was refused because Redis failed: %s", tenant_id, error)
        return None
    return token if taken else None


def tenant_wait_release(*, tenant_id: int, token: str) -> None:
    try:
        redis_client().zrem(waits_key(tenant_id), token)
    except redis.RedisError as error:  # the lease frees it
        logger.warning("could not release wait slot %s of tenant %s: %s", token, tenant_id, error)


class WaitSlot:
    """A wait slot held until `release()` (or the end of a `with` block). `taken` is False when a cap was full:
    the caller must not wait."""

    __slots__ = ("tenant_id", "token", "in_process", "taken")

    def __init__(self, *, tenant_id: int, in_process: bool):
        self.tenant_id = tenant_id
        self.in_process = in_process
        self.token: str | None = None
        self.taken = False
        if in_process and not _process_take():
            return
        self.token = tenant_wait_take(tenant_id=tenant_id, lease_s=settings.NEXUS_WAIT_TIMEOUT_S + LEASE_MARGIN_S)
        if self.token is None:
            if in_process:
                _process_release()
            return
        self.taken = True

    def release(self) -> None:
        if not self.taken or self.token is None:
            return
        self.taken = False
        tenant_wait_release(tenant_id=self.tenant_id, token=self.token)
        if self.in_process:
            _process_release()

    def __enter__(self) -> "WaitSlot":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()


def wait_slot_take(*, tenant_id: int, in_process: bool = True) -> WaitSlot:
    """Take a wait slot of the tenant (and, with `in_process`, of this process's threads). Check `.taken`.

    `in_process=False` is for waits that hold no thread (MCP polls a run from the event loop): they count
    against the tenant's cap only."""
    return WaitSlot(tenant_id=tenant_id, in_process=in_process)
