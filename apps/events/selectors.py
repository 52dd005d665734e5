"""Event reads, inside the caller's tenant schema: who may stream a tenant's events, and the stored events a
reconnecting subscriber replays."""

from apps.accounts.access import require
from apps.core.principal import Principal
from apps.events.models import Event
from apps.events.services import event_data

# Streaming a tenant's events (a WebSocket) needs what reading its runs needs; each event is then filtered by
# what reading it needs (apps/accounts/access.py `can_read_event`).
STREAM_ACTION = "execution.read"
REPLAY_PAGE = 500


def event_stream_require(*, principal: Principal, tenant_id: int) -> None:
    """Raise PermissionDenied (recorded as `access.denied`) unless `principal` may stream tenant `tenant_id`'s events."""
    require(principal, STREAM_ACTION, tenant_id=tenant_id)


def event_replay(
    *,
    principal: Principal,
    tenant_id: int,
    tenant_slug: str,
    since: str,
    session_id: str | None = None,
    execution_id: str | None = None,
    limit: int = REPLAY_PAGE,
) -> list[dict]:
    """One page of the stored events after `since` (ids sort by time), oldest first, of one session or run when
    given, in the shape they are published in. Every event of the page, readable or not: a short page means the
    replay is done, and the subscriber filters by type as it does live events (`can_read_event`)."""
    event_stream_require(principal=principal, tenant_id=tenant_id)
    events = Event.objects.filter(id__gt=since)
    if session_id:
        events = events.filter(session_id=session_id)
    if execution_id:
        events = events.filter(data__execution_id=execution_id)
    return [event_data(event, tenant_slug=tenant_slug) for event in events.order_by("id")[:limit]]
