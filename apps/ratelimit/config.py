"""Rate-limit plans from settings: requests per minute for each tenant plan.

Imported by nexus_site/settings/base.py, so it must not import Django models or anything that needs the app
registry.
"""

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured

# What each plan limits, per minute: `tenant` every request of the tenant together, `credential` each API key or
# user, `app` each API application whose own `rate_limit_per_minute` is unset.
PLAN_FIELDS = ("tenant", "credential", "app")
# The plan of a tenant whose plan has no row of its own.
FALLBACK_PLAN = "standard"
# Limits admit a burst of the whole allowance, then refill steadily (apps/ratelimit/limiter.py). A new API
# application gets 100 a minute on every plan, so a burst of 150 calls is refused in part; an application that
# needs more has its own rate_limit_per_minute. `enterprise` is the plan `nexus up` gives the installation's
# first tenant (NEXUS_TENANT_PLAN): its limits are checked on every request but sit far above what one
# installation serves (~115,000 requests a minute for the hello-world benchmark on 2 cores).
DEFAULT_PLANS: dict[str, dict[str, int]] = {
    "free": {"tenant": 1_200, "credential": 600, "app": 60},
    "standard": {"tenant": 30_000, "credential": 12_000, "app": 100},
    "enterprise": {"tenant": 1_200_000, "credential": 1_200_000, "app": 100},
}
MAX_PER_MINUTE = 10**12


def rate_limit_plans(override: str | dict[str, Any] | None = None) -> dict[str, dict[str, int]]:
    """DEFAULT_PLANS with NEXUS_RATE_LIMIT_PLANS (JSON) laid over it: `{"standard": {"tenant": 60000}, "gold": {...}}`.

    A listed plan changes only the fields it gives; a new plan must give all three. Every value is a whole
    number of requests per minute, at least 1.
    """
    try:
        data = json.loads(override) if isinstance(override, str) else (override or {})
    except ValueError as error:
        raise ImproperlyConfigured(f"NEXUS_RATE_LIMIT_PLANS is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ImproperlyConfigured('NEXUS_RATE_LIMIT_PLANS must be a JSON object: {"<plan>": {"tenant": n, ...}}')
    plans = {name: dict(fields) for name, fields in DEFAULT_PLANS.items()}
    for name, fields in data.items():
        if not isinstance(fields, dict):
            raise ImproperlyConfigured(f"NEXUS_RATE_LIMIT_PLANS[{name!r}] must be an object with {', '.join(PLAN_FIELDS)}")
        unknown = sorted(set(fields) - set(PLAN_FIELDS))
        if unknown:
            raise ImproperlyConfigured(f"NEXUS_RATE_LIMIT_PLANS[{name!r}]: unknown field(s) {', '.join(unknown)}")
        plan = plans.setdefault(name, {})
        plan.update(fields)
        missing = [field for field in PLAN_FIELDS if field not in plan]
        if missing:
            raise ImproperlyConfigured(f"NEXUS_RATE_LIMIT_PLANS[{name!r}] is a new plan: it needs {', '.join(missing)}")
        for field, value in plan.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PER_MINUTE:
                raise ImproperlyConfigured(
                    f"NEXUS_RATE_LIMIT_PLANS[{name!r}][{field!r}] must be a whole number of requests per minute, at least 1"
                )
    return plans
