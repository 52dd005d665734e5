"""Test settings: the real PostgreSQL and Redis, a test-only secret key."""

import os

from apps.ops.installation_keys import TEST_SECRET_KEY

os.environ.setdefault("NEXUS_SECRET_KEY", TEST_SECRET_KEY)
# pytest-xdist runs the suite in worker processes gw0, gw1, ...: pytest-django gives each its own test database
# (test_nexus_gw0, ...); each also gets its own Redis database, since presence, metrics and rate-limit keys are not
# named after the database. Set in the environment, so that the Celery workers a test starts inherit it.
XDIST_REDIS_DATABASES = (0, 1, 2, 3)
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    index = int(worker.removeprefix("gw"))
    if index >= len(XDIST_REDIS_DATABASES):
        raise RuntimeError(f"pytest -n: at most {len(XDIST_REDIS_DATABASES)} workers (Redis databases for each are fixed)")
    base_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    os.environ["REDIS_URL"] = f"{base_url}/{XDIST_REDIS_DATABASES[index]}"

from nexus_site.settings.base import *  # noqa: E402,F403
from nexus_site.settings.base import DATABASES, NEXUS_RATE_LIMIT_PLANS, env  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": env("NEXUS_TEST_DATABASE", default="test_nexus")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Every request is still checked against Redis, but no plan or login limit is within reach: the suite shares one
# Redis (and tenant ids) with other test runs. The rate-limit tests set real, low limits with override_settings.
NEXUS_RATE_LIMIT_PLANS = {plan: dict.fromkeys(limits, 10**9) for plan, limits in NEXUS_RATE_LIMIT_PLANS.items()}
NEXUS_LOGIN_THROTTLE_ACCOUNT = NEXUS_LOGIN_THROTTLE_IP = NEXUS_LOGIN_AUDIT_PER_MINUTE = 10**9
