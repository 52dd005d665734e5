"""Settings package: base.py holds everything; local.py, production.py and test.py change only what they must."""

import os

ENVIRONMENTS = {"local": "nexus_site.settings.local", "production": "nexus_site.settings.production"}


def settings_module() -> str:
    """The settings module an entry point uses when DJANGO_SETTINGS_MODULE is not set: NEXUS_ENV picks it."""
    name = os.environ.get("NEXUS_ENV", "local") or "local"
    if name not in ENVIRONMENTS:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"NEXUS_ENV must be one of {', '.join(ENVIRONMENTS)}, not {name!r}")
    return ENVIRONMENTS[name]
