"""Test settings: the real PostgreSQL and Redis, a test-only secret key."""

import os

os.environ.setdefault("NEXUS_SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")

from nexus_site.settings.base import *  # noqa: E402,F403
from nexus_site.settings.base import DATABASES, env  # noqa: E402

DATABASES["default"]["TEST"] = {"NAME": env("NEXUS_TEST_DATABASE", default="test_nexus")}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
