"""WebSocket consumers: /ws/sessions/<ses>/, /ws/executions/<run>/, /ws/tenant/ stream the tenant's events.

Close codes (after the handshake is accepted, so clients can read them):
  4401 unauthenticated (no or bad credential) · 4403 forbidden (role below viewer, or not a member)
  4404 not found (no such session or run in the caller's tenant, another tenant's, or an expired session)
  4400 bad request (`since` is not an event id)
Replay: with `?since=evt_…` the consumer joins the live group FIRST, then sends the stored events after
`since` (ids sort by time), then live ones, skipping live events it already replayed: no gap, no duplicate.
Heartbeats are WebSocket pings sent by daphne (`--ping-interval`, `--ping-timeout`): a peer that does not
answer with a pong is dropped.
"""

import asyncio
import json
import logging
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.db import connection

from apps.accounts.access import can
from apps.core.errors import ApplicationError
from apps.core.ids import has_prefix
from apps.events.models import Event
from apps.events.presence import subscribers_mark
from apps.events.services import event_data, session_group, tenant_group

logger = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
REPLAY_LIMIT = 1000


def _replay(tenant, *, since: str, session_id: str | None, execution_id: str | None) -> list[dict]:
    connection.set_tenant(tenant)
    try:
        events = Event.objects.filter(id__gt=since)
        if session_id:
            events = events.filter(session_id=session_id)
        if execution_id:
            events = events.filter(data__execution_id=execution_id)
        return [event_data(e, tenant_slug=tenant.slug) for e in events.order_by("id")[:REPLAY_LIMIT]]
    finally:
        connection.set_schema_to_public()


def _session_exists(tenant, session_id: str) -> str | None:
    """None when the session is live in this tenant, else the reason code."""
    from apps.nexus_sessions.selectors import session_find

    connection.set_tenant(tenant)
    try:
        session_find(session_id=session_id)
        return None
    except ApplicationError as error:
        return error.code
    finally:
        connection.set_schema_to_public()


def _execution_exists(tenant, run_id: str) -> bool:
    from apps.runs.models import Execution

    connection.set_tenant(tenant)
    try:
        return Execution.objects.filter(id=run_id).exists()
    finally:
        connection.set_schema_to_public()


class EventStreamConsumer(AsyncWebsocketConsumer):
    """The shared flow: authenticate, authorize, check the target, subscribe, replay, then stream."""

    groups_to_join: list[str]
    marks_presence = False

    async def connect(self) -> None:
        self.groups_to_join = []
        self.replayed: set[str] = set()
        self.heartbeat: asyncio.Task | None = None
        await self.accept()
        principal, tenant = self.scope.get("principal"), self.scope.get("tenant")
        if principal is None or tenant is None:
            await self.close(code=CLOSE_UNAUTHENTICATED, reason=self.scope.get("auth_error") or "not_authenticated")
            return
        if not (principal.is_platform_admin or principal.tenant_id == tenant.pk) or not can(principal, "execution.read"):
            await self.close(code=CLOSE_FORBIDDEN, reason="permission_denied")
            return
        self.tenant = tenant
        since = (parse_qs(self.scope.get("query_string", b"").decode()).get("since") or [None])[0]
        if since is not None and not has_prefix(since, "evt"):
            await self.close(code=CLOSE_BAD_REQUEST, reason="invalid_since")
            return
        refused = await self.target_refusal()
        if refused:
            await self.close(code=CLOSE_NOT_FOUND, reason=refused)
            return
        for group in self.groups_to_join:
            await self.channel_layer.group_add(group, self.channel_name)
        if self.marks_presence:
            self.heartbeat = asyncio.get_running_loop().create_task(self._keep_presence())
        if since is not None:
            for event in await database_sync_to_async(_replay)(
                tenant, since=since, session_id=self.session_filter(), execution_id=self.execution_filter()
            ):
                self.replayed.add(event["id"])
                await self.send(text_data=json.dumps(event))

    async def _keep_presence(self) -> None:
        slug = self.tenant.slug
        while True:
            try:
                await database_sync_to_async(subscribers_mark, thread_sensitive=False)(slug)
            except Exception:
                logger.exception("could not mark subscribers of %s", slug)
            await asyncio.sleep(settings.NEXUS_WS_HEARTBEAT_S)

    async def disconnect(self, code) -> None:
        if self.heartbeat is not None:
            self.heartbeat.cancel()
        for group in self.groups_to_join:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        if text_data and text_data.strip() == '{"type": "ping"}':
            await self.send(text_data='{"type": "pong"}')  # for clients that cannot send WebSocket pings

    async def nexus_event(self, message) -> None:
        event = message["event"]
        if event["id"] in self.replayed:
            self.replayed.discard(event["id"])
            return
        if self.wants(event):
            await self.send(text_data=json.dumps(event))

    # Per endpoint:
    async def target_refusal(self) -> str | None:
        raise NotImplementedError

    def session_filter(self) -> str | None:
        return None

    def execution_filter(self) -> str | None:
        return None

    def wants(self, event: dict) -> bool:
        return True


class SessionConsumer(EventStreamConsumer):
    async def target_refusal(self) -> str | None:
        self.session_id = self.scope["url_route"]["kwargs"]["session_id"]
        refusal = await database_sync_to_async(_session_exists)(self.tenant, self.session_id)
        self.groups_to_join = [session_group(self.tenant.slug, self.session_id)]
        return refusal

    def session_filter(self) -> str | None:
        return self.session_id


class ExecutionConsumer(EventStreamConsumer):
    marks_presence = True  # a run without a session publishes events only while someone listens

    async def target_refusal(self) -> str | None:
        self.run_id = self.scope["url_route"]["kwargs"]["run_id"]
        if not await database_sync_to_async(_execution_exists)(self.tenant, self.run_id):
            return "execution_not_found"
        self.groups_to_join = [tenant_group(self.tenant.slug)]
        return None

    def execution_filter(self) -> str | None:
        return self.run_id

    def wants(self, event: dict) -> bool:
        return (event.get("data") or {}).get("execution_id") == self.run_id


class TenantConsumer(EventStreamConsumer):
    marks_presence = True

    async def target_refusal(self) -> str | None:
        self.groups_to_join = [tenant_group(self.tenant.slug)]
        return None
