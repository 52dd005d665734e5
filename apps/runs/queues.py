"""Isolation levels: which Celery queue a tenant's runs go to, and how many of them execute at once.

`strict` (the default): the tenant's own queue `nexus.t.<schema>`, and at most `max_concurrent_runs`
(NEXUS_TENANT_CONCURRENCY when unset) of its runs executing across all workers. `standard`: the shared
`nexus` queue, no cap.

Why this keeps one tenant's burst from starving another's runs: a worker consumes every strict tenant's queue
plus `nexus`, and Kombu's Redis transport polls them with one BRPOP over all the keys in a round-robin order
(`queue_order_strategy`, default "round_robin": after a message is taken from a queue, that queue moves to
the end of the list), so the next free pool slot goes to the next queue with work, not to the biggest
backlog. The cap is a Redis sorted set per tenant (member: run id, score: lease expiry on Redis's clock),
taken after the run's advisory lock and before it is marked running; a run that finds the set full stays
`queued` and its task is retried shortly, from the tenant's own queue. The lease is renewed while the run
lives, so a killed worker's slot frees itself within NEXUS_TENANT_SLOT_LEASE_S.
"""

import logging
import random
import threading

import redis
from django.conf import settings
from django.db import connection

from apps.core.tasks import broker_for_read
from apps.ops.redis_client import redis_client
from apps.quotas.limits import TenantLimits
from apps.tenants.models import Isolation, Tenant

logger = logging.getLogger(__name__)

TENANT_QUEUE_PREFIX = "nexus.t."

# KEYS: slots, waiting. ARGV: member, cap, lease (ms), waiting window (ms). Expired leases go first; a run
# already holding a slot keeps it (redelivery). 0: taken; n > 0: refused, n runs of the tenant are waiting.
_TAKE = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[4]))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]))
return redis.call('ZCARD', KEYS[2])
"""
# ARGV: member, lease (ms). 0 when the slot was lost (the lease ran out before this renewal).
_RENEW = """
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""
_scripts: dict[str, object] = {}


class TenantBusy(Exception):
    """Every execution slot of the run's tenant is taken: the run stays queued; its task retries later."""

    def __init__(self, tenant_slug: str, *, waiting: int = 1, cap: int = 1):
        super().__init__(tenant_slug)
        self.waiting = waiting
        self.cap = cap

    def retry_in(self) -> float:
        """Seconds until the run looks for a slot again. Spread with the tenant's backlog, so all its waiting
        runs together look about `cap` times per NEXUS_TENANT_SLOT_RETRY_S whatever their number: a burst
        of thousands costs the workers a few checks a second, and a freed slot is found within about that
        time. Jittered so they do not wake together; at most NEXUS_TENANT_SLOT_RETRY_MAX_S (a waiting task
        is held by a worker, unacknowledged, until then: keep it well under the broker's visibility timeout)."""
        spread = settings.NEXUS_TENANT_SLOT_RETRY_S * max(1.0, self.waiting / self.cap)
        return min(spread, settings.NEXUS_TENANT_SLOT_RETRY_MAX_S) * random.uniform(0.5, 1.5)  # noqa: S311


def queue_for(tenant: Tenant | TenantLimits) -> str:
    if tenant.isolation == Isolation.STRICT:
        return TENANT_QUEUE_PREFIX + tenant.schema_name
    return settings.CELERY_TASK_DEFAULT_QUEUE


def tenant_concurrency(tenant: Tenant | TenantLimits) -> int | None:
    """How many of the tenant's runs may execute at once on the workers; None: no cap (standard)."""
    if tenant.isolation != Isolation.STRICT:
        return None
    return tenant.max_concurrent_runs or settings.NEXUS_TENANT_CONCURRENCY


def slots_key(schema_name: str, kind: str = "slots") -> str:
    # The database name keeps installations (and test databases) that share one Redis apart.
    return f"nexus:{connection.settings_dict['NAME']}:{kind}:{schema_name}"


def _script(name: str, source: str):
    if name not in _scripts:
        _scripts[name] = redis_client().register_script(source)
    return _scripts[name]


class TenantSlot:
    """One execution slot held by a run, its lease renewed by a small thread until `release()`."""

    def __init__(self, key: str | None, run_id: str):
        self.key = key
        self.run_id = run_id
        self._stop = threading.Event()
        if key is not None:
            threading.Thread(target=self._renew, name=f"nexus-slot-{run_id}", daemon=True).start()

    def _renew(self) -> None:
        lease_ms = int(settings.NEXUS_TENANT_SLOT_LEASE_S * 1000)
        while not self._stop.wait(settings.NEXUS_TENANT_SLOT_LEASE_S / 3):
            try:
                if not _script("renew", _RENEW)(keys=[self.key], args=[self.run_id, lease_ms]):
                    logger.warning("run %s lost its slot in %s: its lease ran out", self.run_id, self.key)
                    return
            except redis.RedisError as error:  # keep trying: the lease has time left
                logger.warning("could not renew the slot of run %s: %s", self.run_id, error)

    def release(self) -> None:
        self._stop.set()
        if self.key is None:
            return
        try:
            redis_client().zrem(self.key, self.run_id)
        except redis.RedisError as error:  # the lease frees it
            logger.warning("could not release the slot of run %s: %s", self.run_id, error)


def tenant_slot_take(*, tenant: Tenant | TenantLimits, run_id: str) -> TenantSlot:
    """Take one of the tenant's execution slots for `run_id`, or raise TenantBusy. Tenants without a cap get
    a slot that holds nothing. Without Redis the run goes ahead uncapped: a queued run must not be stuck."""
    cap = tenant_concurrency(tenant)
    if cap is None:
        return TenantSlot(None, run_id)
    key = slots_key(tenant.schema_name)
    lease_ms = int(settings.NEXUS_TENANT_SLOT_LEASE_S * 1000)
    window_ms = int(settings.NEXUS_TENANT_SLOT_RETRY_MAX_S * 3000)  # longer than any wait between two looks
    try:
        waiting = _script("take", _TAKE)(
            keys=[key, slots_key(tenant.schema_name, "waiting")], args=[run_id, cap, lease_ms, window_ms]
        )
    except redis.RedisError as error:
        logger.warning("run %s of tenant %s runs uncapped: Redis failed: %s", run_id, tenant.slug, error)
        return TenantSlot(None, run_id)
    if waiting:
        raise TenantBusy(tenant.slug, waiting=waiting, cap=cap)
    return TenantSlot(key, run_id)


def tenant_queues_all_tenants() -> set[str]:
    """The queues workers must consume besides `nexus`: every strict tenant's, and a standard tenant's own
    queue while messages are left in it (sent before the tenant left strict isolation)."""
    rows = list(Tenant.objects.real().values_list("schema_name", "isolation"))
    wanted = {TENANT_QUEUE_PREFIX + schema for schema, isolation in rows if isolation == Isolation.STRICT}
    others = [TENANT_QUEUE_PREFIX + schema for schema, isolation in rows if isolation != Isolation.STRICT]
    if others:
        # Each queue is a list named after it in the broker's Redis (which need not be REDIS_URL's).
        with broker_for_read() as broker:
            pipeline = broker.default_channel.client.pipeline(transaction=False)
            for name in others:
                pipeline.llen(name)
            lengths = pipeline.execute()
        wanted.update(name for name, length in zip(others, lengths, strict=True) if length)
    return wanted


def queues_follow_once(consumer) -> None:
    """Make this worker consume exactly the tenant queues it should, through its own control channel (the
    consumer's event loop owns its connection; this runs on another thread)."""
    wanted = tenant_queues_all_tenants()
    consuming = {queue.name for queue in consumer.task_consumer.queues}
    control = consumer.app.control
    for name in sorted(wanted - consuming):
        control.add_consumer(name, destination=[consumer.hostname], reply=False)
    for name in sorted(q for q in consuming - wanted if q.startswith(TENANT_QUEUE_PREFIX)):
        control.cancel_consumer(name, destination=[consumer.hostname], reply=False)


def queues_follow(consumer, stop: threading.Event) -> None:
    """Follow the tenants' queues every NEXUS_QUEUE_FOLLOW_S until `stop`: a tenant created (or made strict)
    later is served without restarting workers."""
    while not stop.is_set():
        try:
            queues_follow_once(consumer)
        except Exception as error:  # database or Redis away: keep the queues we have, try again
            logger.warning("could not update the tenant queues of %s: %s", consumer.hostname, error)
        finally:
            connection.close()  # this thread's own connection: a new one each round, never inherited by a fork
        stop.wait(settings.NEXUS_QUEUE_FOLLOW_S)
