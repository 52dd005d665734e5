"""Local development: zero configuration, a development-only secret key."""

import os

os.environ.setdefault("NEXUS_SECRET_KEY", "local-development-only-secret-key-not-for-production-use-0123456789")

from nexus_site.settings.base import *  # noqa: E402,F403
