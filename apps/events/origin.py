"""Who causes events: the channel (source) and the session of the current request, command or task.

Each door declares its origin once (the HTTP middleware per request, the CLI per process from NEXUS_SESSION,
MCP per tool call, the worker per run); services read it when they publish, so no service signature has to
carry a channel just to label its events.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Origin:
    source: str
    session_id: str | None = None


DEFAULT_ORIGIN = Origin(source="api")
_current: ContextVar[Origin] = ContextVar("nexus_event_origin", default=DEFAULT_ORIGIN)


def current_origin() -> Origin:
    return _current.get()


def origin_set(*, source: str, session_id: str | None = None) -> Token:
    """Declare the origin until reset (a CLI process sets it once, for the whole command)."""
    return _current.set(Origin(source=source, session_id=session_id or None))


def origin_reset(token: Token) -> None:
    _current.reset(token)


@contextmanager
def event_origin(*, source: str, session_id: str | None = None) -> Iterator[Origin]:
    """Declare the origin for a block: `with event_origin(source="mcp", session_id=...)`."""
    token = origin_set(source=source, session_id=session_id)
    try:
        yield _current.get()
    finally:
        _current.reset(token)
