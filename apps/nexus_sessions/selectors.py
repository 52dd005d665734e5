"""Session reads: one live session, and the runs bound to it, inside the caller's tenant."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.accounts.access import require
from apps.core.errors import NotFound
from apps.core.principal import Principal
from apps.nexus_sessions.models import Session
from apps.runs.models import Execution

# Sessions are about runs: reading one needs what reading runs needs (viewer and above).
READ_ACTION = "session.read"
MAX_EXECUTIONS = 1000


def idle_cutoff():
    return timezone.now() - timedelta(minutes=settings.NEXUS_SESSION_IDLE_MINUTES)


def session_find(*, session_id: str) -> Session:
    """The live session of the current schema, or NotFound (`session_not_found` / `session_expired`)."""
    session = Session.objects.filter(id=session_id).first() if isinstance(session_id, str) else None
    if session is None:
        raise NotFound(f"session '{session_id}' does not exist", code="session_not_found")
    if session.last_seen_at < idle_cutoff():
        raise NotFound(f"session '{session_id}' has expired", code="session_expired")
    return session


def session_get(*, principal: Principal, tenant_id: int, session_id: str) -> Session:
    require(principal, READ_ACTION, tenant_id=tenant_id)
    return session_find(session_id=session_id)


def session_executions(*, principal: Principal, tenant_id: int, session_id: str) -> tuple[Session, list[Execution]]:
    """Every run of the session (at most MAX_EXECUTIONS), newest first."""
    session = session_get(principal=principal, tenant_id=tenant_id, session_id=session_id)
    executions = list(
        Execution.objects.filter(session_id=session.id).defer("steps").order_by("-created_at", "-id")[:MAX_EXECUTIONS]
    )
    return session, executions
