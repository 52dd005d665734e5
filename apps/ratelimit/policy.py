"""Which limits a request counts against: its credential's and its tenant's, from the tenant's plan; and the
failed-attempt limits of the endpoints that take a password or a client secret."""

import hashlib
import unicodedata
from collections.abc import Mapping

from django.conf import settings
from django.core.signals import setting_changed

from apps.core.errors import NotFound, RateLimited
from apps.core.principal import Principal
from apps.quotas.limits import tenant_limits
from apps.ratelimit.config import FALLBACK_PLAN
from apps.ratelimit.limiter import Decision, Limit, limiter

PLAN_PERIOD_S = 60.0
_MAX_CACHED = 10_000
_principal_limits: dict[tuple, tuple[Limit, ...]] = {}


def plan_limits(plan: str | None) -> Mapping[str, int]:
    """Requests per minute for `plan`: its row of NEXUS_RATE_LIMIT_PLANS, or the `standard` row if it has none."""
    plans = settings.NEXUS_RATE_LIMIT_PLANS
    return plans.get(plan or FALLBACK_PLAN) or plans[FALLBACK_PLAN]


def principal_limits(principal: Principal, per_minute: Mapping[str, int]) -> tuple[Limit, ...]:
    """The credential's limit (an API application's own, else its API key's, else its user's), then the tenant's.

    An application counts all its credentials (API key, OAuth2 tokens) together. A user counts per tenant, like
    the plan that sets the limit.
    """
    limits = []
    if principal.application_id is not None:
        own = principal.rate_limit_per_minute
        # 0 is not "unlimited": the strictest limit there is, one request a minute.
        allowed = per_minute["app"] if own is None else max(1, own)
        limits.append(_per_minute(f"a:{principal.application_id}", allowed, "application"))
    elif principal.api_key_id is not None:
        limits.append(_per_minute(f"k:{principal.api_key_id}", per_minute["credential"], "api_key"))
    elif principal.user_id is not None:
        limits.append(_per_minute(f"u:{principal.tenant_id}:{principal.user_id}", per_minute["credential"], "user"))
    if principal.tenant_id is not None:
        limits.append(_per_minute(f"t:{principal.tenant_id}", per_minute["tenant"], "tenant"))
    return tuple(limits)


def _per_minute(key: str, limit: int, scope: str) -> Limit:
    return Limit(key=key, limit=limit, period_s=PLAN_PERIOD_S, scope=scope)


def principal_check(principal: Principal) -> Decision | None:
    """Count one request of `principal` against its limits. None when nothing limits it: limits switched off
    (NEXUS_RATE_LIMIT_ENABLED), a principal with neither credential nor tenant, or Redis unreachable."""
    if not settings.NEXUS_RATE_LIMIT_ENABLED:
        return None
    tenant_id = principal.tenant_id
    try:
        plan = tenant_limits(tenant_id).plan if tenant_id is not None else None
    except NotFound:
        return None  # deleted since the credential was resolved; the view refuses the request
    return plan_check(principal, plan)


def plan_check(principal: Principal, plan: str | None) -> Decision | None:
    """`principal_check` once the tenant's plan is known: the limits are worked out once per credential and plan
    (and packed into their Redis command once, by the limiter), so a request costs two dict lookups and the
    round trip."""
    cache_key = (
        principal.tenant_id,
        plan,
        principal.application_id,
        principal.api_key_id,
        principal.user_id,
        principal.rate_limit_per_minute,
    )
    limits = _principal_limits.get(cache_key)
    if limits is None:
        limits = principal_limits(principal, plan_limits(plan))
        if len(_principal_limits) >= _MAX_CACHED:
            _principal_limits.clear()
        _principal_limits[cache_key] = limits
    if not limits:
        return None
    return limiter().check(limits, tenant=principal.tenant_slug or "")


def account_normalised(account: str) -> str:
    """The account an attempt counts against: what the authentication backends could match whatever the
    padding, case or Unicode form (DRF strips the username, django-auth-ldap matches uids without regard to
    case), so every variant of one name shares one counter. Merging a few distinct names costs nothing."""
    return unicodedata.normalize("NFKC", account).strip().casefold()


def _account_key(account: str) -> str:
    # Hashed: Redis keys should not list who tried to log in.
    return hashlib.blake2b(account_normalised(account).encode(), digest_size=12).hexdigest()


def attempt_limits(*, scope: str, account: str | None, ip: str | None) -> tuple[Limit, ...]:
    """Failed attempts to prove a secret at one endpoint (`scope`: `login`, `oauth`): per account (username or
    client id) and per client ip, each NEXUS_LOGIN_THROTTLE_* per NEXUS_LOGIN_THROTTLE_PERIOD_S."""
    period = settings.NEXUS_LOGIN_THROTTLE_PERIOD_S
    per_ip = Limit(key=f"f:{scope}:ip:{ip or 'unknown'}", limit=settings.NEXUS_LOGIN_THROTTLE_IP, period_s=period, scope=scope)
    if not account:
        return (per_ip,)
    account_key = f"f:{scope}:a:{_account_key(account)}"
    return (Limit(key=account_key, limit=settings.NEXUS_LOGIN_THROTTLE_ACCOUNT, period_s=period, scope=scope), per_ip)


_SUBJECTS = {
    "application": "this API application",
    "api_key": "this API key",
    "user": "this user in this tenant",
    "tenant": "this tenant",
}
_ATTEMPTS = {"login": "failed login attempts", "oauth": "failed OAuth2 token requests"}


def _per(period_s: float) -> str:
    if period_s == 60:
        return "a minute"
    if period_s % 60 == 0:
        return f"per {period_s / 60:g} minutes"
    return f"per {period_s:g} s"


def refusal(decision: Decision) -> RateLimited:
    """The error a refused request gets, on every channel."""
    retry = f"retry in {decision.retry_after_s} s"
    attempts = _ATTEMPTS.get(decision.scope)
    if attempts is not None:
        detail = f"too many {attempts}: at most {decision.limit} {_per(decision.period_s)} per account and per client; {retry}"
    else:
        subject = _SUBJECTS.get(decision.scope, decision.scope)
        detail = f"rate limit exceeded: {decision.limit} requests {_per(decision.period_s)} for {subject}; {retry}"
    return RateLimited(detail, retry_after=decision.retry_after_s)


def _settings_changed(*, setting: str, **kwargs) -> None:
    if setting.startswith("NEXUS_RATE_LIMIT_"):
        _principal_limits.clear()


setting_changed.connect(_settings_changed)
