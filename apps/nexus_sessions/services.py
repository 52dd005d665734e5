"""Session writes: create, update metadata, and bind a run to a session (checked and kept alive)."""

from django.db import transaction
from django.utils import timezone

from apps.accounts.access import require
from apps.audit.recorder import audit_record
from apps.core.cache import TTLCache
from apps.core.errors import ValidationFailed
from apps.core.ids import new_id
from apps.core.principal import Principal
from apps.events.services import publish
from apps.nexus_sessions.models import Session
from apps.nexus_sessions.representation import session_data
from apps.nexus_sessions.selectors import idle_cutoff, session_get
from apps.tenants.connection import current_schema

# Creating a session or changing it is part of running workflows for someone: operator and above.
WRITE_ACTION = "session.write"
BUMP_INTERVAL_S = 60.0
_MAX_BOUND = 10_000

# (schema, session id) -> True for BUMP_INTERVAL_S after this process bumped last_seen_at: within that time the
# session cannot have expired (the idle limit is minutes), so binding needs no query.
bind_cache = TTLCache(ttl_s=BUMP_INTERVAL_S, max_entries=_MAX_BOUND)


def _validated(*, user, metadata) -> tuple[str, dict]:
    if not isinstance(user, str) or len(user) > 200:
        raise ValidationFailed("user must be a string of at most 200 characters", fields={"user": "at most 200 characters"})
    if not isinstance(metadata, dict):
        raise ValidationFailed("metadata must be a JSON object", fields={"metadata": "must be an object"})
    return user, metadata


def session_create(*, principal: Principal, tenant_id: int, user: str = "", metadata: dict | None = None) -> Session:
    require(principal, WRITE_ACTION, tenant_id=tenant_id)
    user, metadata = _validated(user=user, metadata={} if metadata is None else metadata)
    now = timezone.now()
    with transaction.atomic():
        session = Session.objects.create(
            id=new_id("ses"), user=user, metadata=metadata, created_by=principal.actor, created_at=now, last_seen_at=now
        )
        publish(type="session.created", data=session_data(session), session_id=session.id)
        audit_record(
            action="session.created", tenant_id=tenant_id, principal=principal, target=session.id, details={"user": user}
        )
    return session


def session_update(*, principal: Principal, tenant_id: int, session_id: str, metadata: dict) -> Session:
    """Replace the session's metadata (and count as use: the session stays alive)."""
    require(principal, WRITE_ACTION, tenant_id=tenant_id)
    _, metadata = _validated(user="", metadata=metadata)
    session = session_get(principal=principal, tenant_id=tenant_id, session_id=session_id)
    with transaction.atomic():
        session.metadata = metadata
        session.last_seen_at = timezone.now()
        session.save(update_fields=["metadata", "last_seen_at"])
        publish(type="session.updated", data=session_data(session), session_id=session.id)
        audit_record(
            action="session.updated",
            tenant_id=tenant_id,
            principal=principal,
            target=session.id,
            details={"metadata_keys": sorted(session.metadata)[:50]},
        )
    return session


def session_bind(*, session_id) -> str:
    """Check that a run may be bound to `session_id` (exists in this tenant, not expired) and keep it alive.
    Raises ValidationFailed `session_not_found` / `session_expired` (a bad input of the run)."""
    if not isinstance(session_id, str) or not session_id:
        raise ValidationFailed("unknown session", code="session_not_found", fields={"session": "no such session"})
    key = (current_schema(), session_id)
    if bind_cache.get(key):
        return session_id
    updated = Session.objects.filter(id=session_id, last_seen_at__gte=idle_cutoff()).update(last_seen_at=timezone.now())
    if not updated:
        if Session.objects.filter(id=session_id).exists():
            raise ValidationFailed("the session has expired", code="session_expired", fields={"session": "expired"})
        raise ValidationFailed("unknown session", code="session_not_found", fields={"session": "no such session"})
    bind_cache.set(key, True)
    return session_id
