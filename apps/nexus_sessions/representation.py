"""The one JSON shape of a session, shared by the API and the CLI."""

from datetime import timedelta
from typing import Any

from django.conf import settings

from apps.core.dates import iso_utc
from apps.nexus_sessions.models import Session


def session_data(session: Session) -> dict[str, Any]:
    return {
        "id": session.id,
        "user": session.user,
        "metadata": session.metadata,
        "created_by": session.created_by,
        "created_at": iso_utc(session.created_at),
        "last_seen_at": iso_utc(session.last_seen_at),
        "expires_at": iso_utc(session.last_seen_at + timedelta(minutes=settings.NEXUS_SESSION_IDLE_MINUTES)),
    }
