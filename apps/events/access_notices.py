"""Access notices: a committed change that ends credentials, told at once to every daphne process.

Revoking a key or an application, removing a member, suspending or deleting a tenant calls `access_ended()`
in its transaction; changing an application's scopes or revoking one of its OAuth2 tokens calls
`access_changed()` (its sockets' credentials are resolved again at once; those no longer allowed close). Once
the transaction commits, one small notice is PUBLISHed on `access_channel()`, which every event hub
(apps/realtime/hub.py) subscribes to while it has sockets. The hub closes the WebSockets the notice concerns,
in every process, within a pub/sub round trip. Pub/sub is at-most-once: a notice lost with a broken
connection is caught by the hub's periodic re-check of every socket's credential (NEXUS_WS_RECHECK_S),
so a notice is the fast path, never the only one.

The send is synchronous, after commit: the CLI is a short process, and a revocation is rare. Its failure is
logged and never undoes the committed change.
"""

import json
import logging
import os

import redis
from django.conf import settings
from django.db import transaction

from apps.events.fanout import access_channel

logger = logging.getLogger(__name__)

REASONS = frozenset(
    {
        "apikey_revoked",
        "application_revoked",
        "application_changed",
        "tokens_revoked",
        "member_removed",
        "tenant_suspended",
        "tenant_deleted",
    }
)

_client: redis.Redis | None = None
_client_pid: int | None = None


def _redis() -> redis.Redis:
    global _client, _client_pid

    if _client is None or _client_pid != os.getpid():  # a forked worker must not share the parent's socket
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
        _client_pid = os.getpid()
    return _client


def access_ended(
    *,
    reason: str,
    tenant_id: int,
    api_key_id: str | None = None,
    application_id: str | None = None,
    user_id: int | None = None,
) -> None:
    """After the caller's transaction commits, tell every daphne process to close the sockets this ends:
    a key's (`api_key_id`), an application's (`application_id`; only its OAuth2 tokens' for `tokens_revoked`),
    a member's in the tenant (`user_id`), or every socket of the tenant (`tenant_suspended`, `tenant_deleted`)."""
    if reason not in REASONS:
        raise ValueError(f"unknown access notice reason {reason!r}")
    notice = {"reason": reason, "tenant": int(tenant_id)}
    for field, value in (("api_key", api_key_id), ("application", application_id), ("user", user_id)):
        if value is not None:
            notice[field] = value
    transaction.on_commit(lambda: _send(notice))


def access_changed(*, tenant_id: int, application_id: str) -> None:
    """After commit, have every daphne process resolve the credentials of the application's sockets again now
    (its scopes changed, or one of its OAuth2 tokens was revoked): those no longer allowed close."""
    access_ended(reason="application_changed", tenant_id=tenant_id, application_id=application_id)


def _send(notice: dict) -> None:
    try:
        _redis().publish(access_channel(), json.dumps(notice))
    except redis.RedisError as error:
        logger.warning("could not send the access notice %s (sockets close at their next re-check instead): %s", notice, error)
