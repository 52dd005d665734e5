"""The webhook signing secret of an application, derived rather than stored.

Standard Webhooks signs with a symmetric secret (`whsec_<base64>`), so the sender must be able to produce
it at every delivery. Nexus keeps only a random salt per application and derives the secret as
HMAC-SHA256(site secret, "webhook:<app id>:<salt>"): the database alone does not reveal it, a new salt
rotates it, and every node derives the same value.
"""

import base64
import hashlib
import hmac
import secrets

from django.conf import settings


def new_salt() -> str:
    return secrets.token_hex(16)


def webhook_secret(*, app_id: str, salt: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode(), f"webhook:{app_id}:{salt}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()
