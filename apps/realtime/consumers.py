"""WebSocket consumers: /ws/sessions/<ses>/, /ws/executions/<run>/, /ws/tenant/ stream the tenant's events.

Close codes (sent after accepting the handshake, so clients can read them):
  4401 unauthenticated (no or bad credential; later: the credential expired or was revoked, or its tenant
       was suspended or deleted) · 4403 forbidden (role below viewer, or not a member; later: the membership
       was removed, the tenant suspended or deleted, the role or scopes narrowed); a refusal by role or scopes
       is recorded as `access.denied` (apps/events/selectors.py `event_stream_require`)
  4404 not found (no such session or run in the caller's tenant, another tenant's, or an expired session)
  4400 bad request (`since` is not an event id)
  4429 the credential's holder has NEXUS_WS_MAX_PER_CREDENTIAL sockets open already
  4503 the live stream was interrupted (this process lost, or could not open, its Redis subscription):
       reconnect with `?since=<last event id>` to replay what was missed
Live events come from the process's hub (apps/realtime/hub.py), not a channel-layer channel per socket: the
hub routes each event to the sockets of its tenant, session or run and sends the publisher's JSON text as is.
The handshake completes only once the socket is registered with the hub and the hub's subscription is
confirmed: from then on the client misses nothing published. Replay: with `?since=evt_…` the consumer then
sends the stored events after `since` (ids sort by time, and by creation within a process), then the live
ones that arrived meanwhile and after, skipping those it already replayed: no gap, no duplicate, in order.
A socket receives only the events its principal may read (apps/accounts/access.py `can_read_event`: an
application with `executions:read` only hears no `member.*`), live and replayed, by the principal as its last
re-check resolved it (apps/realtime/hub.py re-checks every NEXUS_WS_RECHECK_S and on access notices).
Heartbeats are WebSocket pings sent by daphne (`--ping-interval`, `--ping-timeout`): a peer that does not
answer with a pong is dropped.
"""

import asyncio
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from apps.accounts.access import can_read_event
from apps.core.errors import ApplicationError, PermissionDenied
from apps.core.ids import has_prefix
from apps.events.fanout import event_text
from apps.events.selectors import event_replay, event_stream_require
from apps.nexus_sessions.selectors import session_find
from apps.realtime.auth import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHENTICATED,
    credential_holder,
    notice_rechecks,
    notice_refusal,
    recheck_refusal,
)
from apps.realtime.hub import HubUnavailable, TooManyConnections, hub
from apps.runs.selectors import run_get
from apps.tenants.connection import use_public, use_tenant

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope

    from apps.core.principal import Principal
    from apps.tenants.models import Tenant

    class EventScope(_ChannelScope, total=False):
        """The scope as apps/realtime/auth.py's middleware leaves it: the credential, and whom and which tenant it
        names (or why not)."""

        credential: str
        principal: Principal
        tenant: Tenant
        auth_error: str


logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_MANY = 4429
CLOSE_INTERRUPTED = 4503
REPLAY_PAGE = 500


def _replay(tenant, principal, *, since: str, session_id: str | None, execution_id: str | None) -> list[dict] | None:
    """One page of the stored events after `since`, oldest first; None when the principal (as a re-check
    meanwhile resolved it) may no longer stream them."""
    use_tenant(tenant)
    try:
        return event_replay(
            principal=principal,
            tenant_id=tenant.pk,
            tenant_slug=tenant.slug,
            since=since,
            session_id=session_id,
            execution_id=execution_id,
            limit=REPLAY_PAGE,
        )
    except PermissionDenied:
        return None
    finally:
        use_public()


def _admission(tenant, principal, *, session_id: str | None, run_id: str | None) -> tuple[int, str] | None:
    """(close code, reason) when `principal` may not stream this target: 4403 refused (recorded as
    `access.denied`), 4404 with the reason when the session or run is not live in the caller's tenant."""
    use_tenant(tenant)
    try:
        event_stream_require(principal=principal, tenant_id=tenant.pk)
        if session_id is not None:
            session_find(session_id=session_id)
        if run_id is not None:
            run_get(principal=principal, tenant_id=tenant.pk, run_id=run_id)
        return None
    except PermissionDenied as error:
        return CLOSE_FORBIDDEN, error.code
    except ApplicationError as error:
        return CLOSE_NOT_FOUND, error.code
    finally:
        use_public()


class EventStreamConsumer(AsyncWebsocketConsumer):
    """The shared flow: authenticate, authorize, check the target, join the hub, replay, then stream."""

    scope: "EventScope"
    # The stubs type the alias as a str; None names no layer, which channels answers with no channel per socket.
    channel_layer_alias = None  # type: ignore[assignment]  # live events come from the hub: no channel-layer channel
    marks_presence = False
    session_id: str | None = None
    execution_id: str | None = None

    async def connect(self) -> None:
        self.joined = False
        self.accepted = False
        self.ended: tuple[int, str] | None = None  # access ended before the handshake completed
        self.readable: dict[str, bool] = {}  # event type -> may this socket's principal read it
        self.replayed: set[str] = set()
        self.backlog: list[tuple[dict, str]] | None = []  # live events held back until the replay is sent
        since: str | None = next(iter(parse_qs(self.scope.get("query_string", b"").decode()).get("since", [])), None)
        refusal = await self.refusal(since)
        if refusal is None:
            try:
                self.joined = True  # from here on the hub may end it (access notices, re-checks)
                await hub().join(self)
            except TooManyConnections:
                self.joined = False
                refusal = (CLOSE_TOO_MANY, "too_many_connections")
            except HubUnavailable:
                self.joined = False
                refusal = (CLOSE_INTERRUPTED, "events_unavailable")
        # Accepted only now: once a client's handshake completes, every event published afterwards reaches it.
        await self.accept()
        self.accepted = True
        refusal = refusal or self.ended
        if refusal is not None:
            await self.close(code=refusal[0], reason=refusal[1])
            return
        try:
            previous: set[str] = set()
            while since is not None:  # page by page, so a long absence replays everything, not its first page
                page = await database_sync_to_async(_replay)(
                    self.tenant, self.principal, since=since, session_id=self.session_id, execution_id=self.execution_id
                )
                if page is None:
                    self.end(CLOSE_FORBIDDEN, "permission_denied")
                    return
                # Only the newest events can still be on their way live: remember the last two pages' ids.
                self.replayed = previous | {event["id"] for event in page}
                previous = {event["id"] for event in page}
                for event in page:
                    if not self.joined:  # interrupted or ended meanwhile: the socket is closing
                        return
                    if self.may_read(event["type"]):
                        await self.send(text_data=event_text(event))
                since = page[-1]["id"] if len(page) == REPLAY_PAGE else None
            while self.backlog:
                sending = self._send_live(*self.backlog.pop(0))
                if sending is not None:
                    await sending
            self.backlog = None
        except BaseException:
            await self.disconnect(None)  # the socket dies with this error: stop the hub's deliveries
            raise

    async def refusal(self, since: str | None) -> tuple[int, str] | None:
        """(close code, reason) when this socket may not stream; None when it may (tenant and target are set)."""
        principal, tenant = self.scope.get("principal"), self.scope.get("tenant")
        if principal is None or tenant is None:
            return CLOSE_UNAUTHENTICATED, self.scope.get("auth_error") or "not_authenticated"
        session_id, run_id = self.target()
        refused = await database_sync_to_async(_admission)(tenant, principal, session_id=session_id, run_id=run_id)
        if refused is not None and refused[0] == CLOSE_FORBIDDEN:
            return refused
        self.principal, self.credential = principal, self.scope["credential"]
        self.tenant, self.tenant_id, self.tenant_slug = tenant, tenant.pk, tenant.slug
        self.credential_holder = credential_holder(principal, tenant.pk)
        if since is not None and not has_prefix(since, "evt"):
            return CLOSE_BAD_REQUEST, "invalid_since"
        if refused is not None:
            return refused
        self.session_id, self.execution_id = session_id, run_id
        return None

    def deliver(self, event: dict, text: str):
        """Called by the hub for each live event of this socket, in order; returns the send to await."""
        if self.backlog is not None:
            self.backlog.append((event, text))
            return None
        return self._send_live(event, text)

    def _send_live(self, event: dict, text: str):
        if not self.joined:
            return None
        if self.replayed and event["id"] in self.replayed:
            self.replayed.discard(event["id"])
            return None
        if not self.may_read(event["type"]):
            return None
        return self.send(text_data=text)

    def may_read(self, event_type: str) -> bool:
        readable = self.readable.get(event_type)
        if readable is None:
            if len(self.readable) >= 256:  # a workflow may name its own event types: keep the memo bounded
                self.readable.clear()
            readable = self.readable[event_type] = can_read_event(self.principal, event_type)
        return readable

    def interrupted(self) -> None:
        self.joined = False
        asyncio.get_running_loop().create_task(self.close(code=CLOSE_INTERRUPTED, reason="events_interrupted"))

    def access_notice(self, notice: dict) -> bool:
        """Called by the hub for an access notice of this socket's tenant (apps/events/access_notices.py);
        True when the credential is to be resolved again now."""
        refusal = notice_refusal(notice, self.principal)
        if refusal is not None:
            self.end(*refusal)
            return False
        return notice_rechecks(notice, self.principal)

    def credential_checked(self, resolved) -> None:
        """Called by the hub with this socket's credential resolved again: close, or stream as the principal now is."""
        refusal = recheck_refusal(resolved, tenant_id=self.tenant_id)
        if refusal is not None:
            self.end(*refusal)
        elif resolved[0] != self.principal:
            self.principal, self.readable = resolved[0], {}

    def end(self, code: int, reason: str) -> None:
        """Access ended: deliver nothing more, now, and close (once the handshake is through)."""
        if not self.joined:
            return
        self.joined = False
        hub().leave(self)
        if not self.accepted:
            self.ended = (code, reason)
            return
        logger.info("closing a socket of tenant %s with %s (%s)", self.tenant_slug, code, reason)
        asyncio.get_running_loop().create_task(self.close(code=code, reason=reason))

    async def disconnect(self, code) -> None:
        self.joined = False
        if getattr(self, "tenant_id", None) is not None:
            hub().leave(self)  # idempotent; also after an interruption or an end, which leave the slot to free

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data and text_data.strip() == '{"type": "ping"}':
            await self.send(text_data='{"type": "pong"}')  # for clients that cannot send WebSocket pings

    def target(self) -> tuple[str | None, str | None]:
        """(session id, run id) this socket streams the events of; (None, None) for the whole tenant."""
        return None, None


class SessionConsumer(EventStreamConsumer):
    def target(self) -> tuple[str | None, str | None]:
        return self.scope["url_route"]["kwargs"]["session_id"], None


class ExecutionConsumer(EventStreamConsumer):
    marks_presence = True  # a run without a session publishes events only while someone listens

    def target(self) -> tuple[str | None, str | None]:
        return None, self.scope["url_route"]["kwargs"]["run_id"]


class TenantConsumer(EventStreamConsumer):
    marks_presence = True
