"""Quota enforcement, called by the services of every channel right before something is stored (or sent).

Workflows are counted in the tenant's schema under a per-tenant lock. Executions are counted per period
(NEXUS_QUOTA_PERIOD, UTC) in Redis so every node shares one counter: INCR on a per-tenant, per-period key,
seeded from the database on first use (SET NX) and expiring a day after its period. Every stored run counts
(API, CLI, MCP, test runs, suite cases and subworkflow children); a run refused before it is stored (invalid
inputs, not deployed, forbidden) does not.
"""

import logging

import redis
from django.conf import settings
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.locks import WORKFLOW_QUOTA_CLASS
from apps.ops.redis_client import redis_client
from apps.quotas.limits import TenantLimits
from apps.quotas.periods import period_bounds, period_key
from apps.runs.models import Execution
from apps.tenants.models import Tenant
from apps.workflows.models import Workflow

logger = logging.getLogger(__name__)

GRACE_S = 86_400  # a counter outlives its period by a day: a late release never meets a re-seeded key

# -1: not seeded yet; -2: the limit is reached (nothing taken); else the count including this run.
_CONSUME = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local used = redis.call('INCR', KEYS[1])
if used > tonumber(ARGV[1]) then
  redis.call('DECR', KEYS[1])
  return -2
end
return used
"""
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('DECR', KEYS[1]) end
return 0
"""


class QuotaExceeded(PermissionDenied):
    code = "quota_exceeded"


_consume_script = _release_script = None


def _scripts():
    global _consume_script, _release_script
    if _consume_script is None:
        client = redis_client()
        _consume_script, _release_script = client.register_script(_CONSUME), client.register_script(_RELEASE)
    return _consume_script, _release_script


def execution_counter_key(tenant_id: int, period: str) -> str:
    # The database name keeps installations (and test databases) that share one Redis apart.
    return f"nexus:{connection.settings_dict['NAME']}:quota:executions:{tenant_id}:{period}"


def _stored_runs(start, end) -> int:
    """Runs stored in the current tenant schema during [start, end)."""
    return Execution.objects.filter(created_at__gte=start, created_at__lt=end).count()


def _refuse(tenant: Tenant | TenantLimits, limit: int, period: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"tenant '{tenant.slug}' has used its {limit} executions for {period}",
        fields={"quota": "executions", "limit": limit, "period": period},
    )


def execution_quota_consume(*, tenant: Tenant | TenantLimits) -> str | None:
    """Take one execution from the tenant's quota for the current period, in the tenant's schema.

    Returns the counter's key, to hand to `execution_quota_release` if the run then is not stored, or None
    when there is nothing to give back (no quota). Raises QuotaExceeded, having taken nothing, at the limit.
    Without Redis the database count decides (slower, and two concurrent runs may both pass the last slot):
    a Redis outage must not stop tenants with a quota from running.
    """
    limit = tenant.quota_executions
    if limit is None:
        return None
    period_name = settings.NEXUS_QUOTA_PERIOD
    now = timezone.now()
    period = period_key(now, period_name)
    key = execution_counter_key(tenant.id, period)
    try:
        consume, _ = _scripts()
        used = consume(keys=[key], args=[limit])
        if used == -1:
            start, end = period_bounds(now, period_name)
            redis_client().set(key, _stored_runs(start, end), nx=True, exat=int(end.timestamp()) + GRACE_S)
            used = consume(keys=[key], args=[limit])
    except redis.RedisError as error:
        logger.warning("execution quota of tenant %s checked in the database: Redis failed: %s", tenant.slug, error)
        start, end = period_bounds(now, period_name)
        if _stored_runs(start, end) >= limit:
            raise _refuse(tenant, limit, period) from None
        return None
    if used < 0:
        raise _refuse(tenant, limit, period)
    return key


def execution_quota_release(key: str | None) -> None:
    """Give back what `execution_quota_consume` took for a run that was not stored after all."""
    if key is None:
        return
    try:
        _, release = _scripts()
        release(keys=[key])
    except redis.RedisError as error:  # the counter stays one high until the period ends
        logger.warning("could not release execution quota %s: %s", key, error)


MAIL_SENT_ACTION = "mail.sent"


def mail_counter_key(tenant_id: int, day: str) -> str:
    return f"nexus:{connection.settings_dict['NAME']}:quota:mail:{tenant_id}:{day}"


def _mails_sent(tenant_id: int, start, end) -> int:
    """Messages the tenant sent during [start, end), counted from their audit rows (one per message)."""
    return AuditEvent.objects.filter(tenant_id=tenant_id, action=MAIL_SENT_ACTION, ts__gte=start, ts__lt=end).count()


def _refuse_mail(tenant: Tenant | TenantLimits, limit: int, day: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"tenant '{tenant.slug}' has sent its {limit} email messages for {day}",
        fields={"quota": "mail", "limit": limit, "period": day},
    )


def mail_quota_consume(*, tenant: Tenant | TenantLimits) -> str | None:
    """Take one message from the tenant's mail quota for the current UTC day (its `quota_mail_per_day`, else
    NEXUS_MAIL_PER_TENANT_PER_DAY).

    Returns the counter's key for `mail_quota_release` if the message then is not sent. Raises QuotaExceeded,
    having taken nothing, at the limit. The counter is seeded from the day's `mail.sent` audit rows, so a
    flushed Redis forgets nothing; without Redis those rows decide (two concurrent sends may both pass the
    last slot), as for executions."""
    limit = tenant.quota_mail_per_day
    if limit is None:
        limit = settings.NEXUS_MAIL_PER_TENANT_PER_DAY
    now = timezone.now()
    day = period_key(now, "day")
    if limit <= 0:
        raise _refuse_mail(tenant, limit, day)
    key = mail_counter_key(tenant.id, day)
    try:
        consume, _ = _scripts()
        used = consume(keys=[key], args=[limit])
        if used == -1:
            start, end = period_bounds(now, "day")
            redis_client().set(key, _mails_sent(tenant.id, start, end), nx=True, exat=int(end.timestamp()) + GRACE_S)
            used = consume(keys=[key], args=[limit])
    except redis.RedisError as error:
        logger.warning("mail quota of tenant %s checked in the database: Redis failed: %s", tenant.slug, error)
        start, end = period_bounds(now, "day")
        if _mails_sent(tenant.id, start, end) >= limit:
            raise _refuse_mail(tenant, limit, day) from None
        return None
    if used < 0:
        raise _refuse_mail(tenant, limit, day)
    return key


def mail_quota_release(key: str | None) -> None:
    """Give back what `mail_quota_consume` took for a message that could not be sent."""
    execution_quota_release(key)


def workflow_quota_check(*, tenant_id: int) -> None:
    """Refuse a new workflow at the tenant's limit. Call inside the transaction that creates it: the lock
    taken here makes concurrent creations in one tenant count one after the other."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT quota_workflows, slug FROM public.{Tenant._meta.db_table} WHERE id = %s", [tenant_id])  # noqa: S608
        limit, slug = cursor.fetchone()
        if limit is None:
            return
        assert connection.in_atomic_block, "workflow_quota_check must run in the creating transaction"  # noqa: S101
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [WORKFLOW_QUOTA_CLASS, tenant_id])
    if Workflow.objects.filter(deleted_at__isnull=True).count() >= limit:
        raise QuotaExceeded(
            f"tenant '{slug}' has reached its limit of {limit} workflows",
            fields={"quota": "workflows", "limit": limit},
        )


class execution_quota_held:  # noqa: N801 (used as a context manager, named like one)
    """`with execution_quota_held(key): <store the run>`: gives the execution back if storing raises.
    A class rather than @contextmanager: it sits on the run hot path, and costs a fraction of a microsecond."""

    __slots__ = ("key",)

    def __init__(self, key: str | None):
        self.key = key

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.key is not None:
            execution_quota_release(self.key)
