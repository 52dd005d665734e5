"""Where the current call comes from (channel, client ip, request id), declared once by each door for the audit log.

The HTTP middleware sets it per request, the `nexus` command per verb, Celery per task; `audit_record` reads it,
so no service signature has to carry an ip or a request id just to label its audit rows.
"""

import functools
import ipaddress
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass

from django.conf import settings

REQUEST_ID_HEADER = "X-Request-ID"
# A request id a client or proxy sends is kept when it is this tame; anything else is replaced by our own.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


@dataclass(frozen=True, slots=True)
class AuditContext:
    channel: str
    ip: str | None = None
    request_id: str = ""


# In-process callers with no door (bootstrap, fixtures, shells) are the platform itself.
SYSTEM_CONTEXT = AuditContext(channel="system")
_current: ContextVar[AuditContext] = ContextVar("nexus_audit_context", default=SYSTEM_CONTEXT)


def current_context() -> AuditContext:
    return _current.get()


def context_set(*, channel: str, ip: str | None = None, request_id: str = "") -> Token:
    return _current.set(AuditContext(channel=channel, ip=ip, request_id=request_id or new_request_id()))


def context_reset(token: Token) -> None:
    _current.reset(token)


@contextmanager
def audit_context(*, channel: str, ip: str | None = None, request_id: str = "") -> Iterator[AuditContext]:
    """Declare the origin for a block: `with audit_context(channel="mcp", ip=..., request_id=...)`."""
    token = context_set(channel=channel, ip=ip, request_id=request_id)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def in_context(handler, *, channel: str):
    """`handler` wrapped to run in a fresh context of `channel` (each CLI verb: channel `cli`, its own request id)."""

    @functools.wraps(handler)
    def run(*args, **kwargs):
        with audit_context(channel=channel):
            return handler(*args, **kwargs)

    return run


def new_request_id() -> str:
    return os.urandom(12).hex()


def request_id_from(value: str | None) -> str:
    """The caller's X-Request-ID when it is a short, plain token; otherwise a new one."""
    if value and _REQUEST_ID_RE.match(value):
        return value
    return new_request_id()


_checked_ips: dict[str, str | None] = {}


def valid_ip(value: str | None) -> str | None:
    """`value` as a normalised ip address, or None. Remembered: the same few addresses come on every request."""
    if not value:
        return None
    known = _checked_ips.get(value, "")
    if known != "":
        return known
    try:
        checked = str(ipaddress.ip_address(value.strip()))
    except ValueError:
        checked = None
    if len(_checked_ips) >= 10_000:
        _checked_ips.clear()
    _checked_ips[value] = checked
    return checked


def client_ip(remote_addr: str | None, forwarded_for: str | Sequence[str] | None) -> str | None:
    """The client's address, for every door (the HTTP middleware, MCP). Behind our HAProxy (a trusted proxy,
    NEXUS_TRUSTED_PROXIES, loopback by default) it is the last X-Forwarded-For entry: the one the proxy
    appended. Earlier entries are whatever the client sent and are never believed; from any other peer the
    header is ignored. `forwarded_for` is the header's value or, where a server keeps repeated headers apart
    (ASGI), all its values in order: HAProxy adds its own header line after the client's, so the first
    line is the client's choice and only the last one counts."""
    if forwarded_for is not None and not isinstance(forwarded_for, str):
        forwarded_for = ",".join(forwarded_for)
    remote = valid_ip(remote_addr)
    if forwarded_for and remote is not None and remote in settings.NEXUS_TRUSTED_PROXIES:
        forwarded = valid_ip(forwarded_for.rsplit(",", 1)[-1])
        if forwarded is not None:
            return forwarded
    return remote
