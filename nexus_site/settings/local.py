"""Local development (`make run`): zero configuration; the secret keys are generated into the data directory.

No key is written here: the first start makes random ones in `$NEXUS_DATA_DIR/secrets.json` (mode 600) and every
later start reuses them (apps/ops/installation_keys.py), unless NEXUS_SECRET_KEY is set.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from apps.ops.installation_keys import installation_keys, refuse_published_keys

if os.environ.get("NEXUS_ENV", "local") == "production":
    raise ImproperlyConfigured(
        "NEXUS_ENV is production but DJANGO_SETTINGS_MODULE is nexus_site.settings.local: "
        "unset DJANGO_SETTINGS_MODULE or set it to nexus_site.settings.production"
    )
if not os.environ.get("NEXUS_SECRET_KEY"):
    _data_dir = Path(os.environ.get("NEXUS_DATA_DIR", str(Path(__file__).resolve().parent.parent.parent / "var")))
    _keys = installation_keys(data_dir=_data_dir)
    os.environ["NEXUS_SECRET_KEY"] = _keys["secret_key"]
    if not os.environ.get("NEXUS_JWT_SIGNING_KEY"):
        os.environ["NEXUS_JWT_SIGNING_KEY"] = _keys["jwt_signing_key"]
refuse_published_keys(secret_key=os.environ["NEXUS_SECRET_KEY"], jwt_key=os.environ.get("NEXUS_JWT_SIGNING_KEY", ""))

from nexus_site.settings.base import *  # noqa: E402,F403
