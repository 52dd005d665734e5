"""The event hub of a daphne process: one Redis pub/sub subscription per tenant with sockets here, fanned out in-process.

Publishers PUBLISH each committed event once, as its final JSON text, on its tenant's channel
(apps/events/fanout.py). The hub holds one pub/sub connection per process (per event loop), SUBSCRIBEs to a
tenant's channel while at least one local WebSocket of that tenant is open, and hands every message to the
local subscribers it concerns — all of the tenant's /ws/tenant/ sockets, the sockets of the event's session,
the sockets watching its run — as the same text: one decode per event and process, no per-socket Redis write,
queue or re-encoding. One reader task delivers messages in the order Redis sent them, so each socket receives
one publisher's events in publish order.

Invariants the consumers rely on:
- `join()` returns once Redis has confirmed the subscription, so a replay from the stored log that starts
  afterwards overlaps the live stream instead of leaving a gap.
- Pub/sub is at-most-once. If the connection to Redis is lost, every local subscriber is told
  (`interrupted()`) and closes its socket, so its client reconnects with `?since=` and replays what it missed;
  a silent resubscribe would drop events without anyone knowing. A heartbeat PING detects a dead connection.
- Tenant isolation: a tenant's sockets are only ever registered under that tenant's channel.

The hub also keeps the presence flag (apps/events/presence.py) of tenants with tenant/execution sockets here.
"""

import asyncio
import json
import logging
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Protocol

import redis.asyncio
from django.conf import settings
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from apps.events.fanout import events_channel
from apps.events.presence import subscribers_mark_async

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 5.0
# Daphne (Twisted) only buffers a send; the bytes leave in a later turn of the event loop. Giving the loop a turn
# every few sockets lets the first sockets' frames go out while the hub still works through the rest, and keeps
# pings, handshakes and MCP requests in the same process from waiting behind a whole fan-out.
YIELD_EVERY = 20


class HubUnavailable(Exception):
    """Redis could not be reached or did not confirm the subscription."""


class Subscriber(Protocol):
    tenant_slug: str
    session_id: str | None  # set: only this session's events
    execution_id: str | None  # set: only this run's events
    marks_presence: bool

    def deliver(self, event: dict, text: str) -> Awaitable[None] | None: ...

    def interrupted(self) -> None: ...


class _Tenant:
    """The local subscribers of one tenant, indexed the way events are routed."""

    __slots__ = ("everything", "by_session", "by_execution", "present", "ready")

    def __init__(self, ready: asyncio.Future) -> None:
        self.everything: set[Subscriber] = set()
        self.by_session: dict[str, set[Subscriber]] = {}
        self.by_execution: dict[str, set[Subscriber]] = {}
        self.present = 0  # subscribers that keep the tenant's presence flag up
        self.ready = ready  # the subscription is confirmed (or failed)

    def _index(self, subscriber: Subscriber) -> set[Subscriber]:
        if subscriber.session_id is not None:
            return self.by_session.setdefault(subscriber.session_id, set())
        if subscriber.execution_id is not None:
            return self.by_execution.setdefault(subscriber.execution_id, set())
        return self.everything

    def add(self, subscriber: Subscriber) -> None:
        self._index(subscriber).add(subscriber)
        self.present += subscriber.marks_presence

    def remove(self, subscriber: Subscriber) -> bool:
        """False if it was not here."""
        index = self._index(subscriber)
        if subscriber not in index:
            return False
        index.discard(subscriber)
        self.present -= subscriber.marks_presence
        if not index and index is not self.everything:  # an emptied session or run entry
            table = self.by_session if subscriber.session_id is not None else self.by_execution
            del table[subscriber.session_id if subscriber.session_id is not None else subscriber.execution_id]
        return True

    def targets(self, event: dict) -> list[Subscriber]:
        found = list(self.everything)
        if event.get("session") and event["session"] in self.by_session:
            found += self.by_session[event["session"]]
        execution_id = (event.get("data") or {}).get("execution_id")
        if execution_id and execution_id in self.by_execution:
            found += self.by_execution[execution_id]
        return found

    def __len__(self) -> int:
        return len(self.everything) + sum(map(len, self.by_session.values())) + sum(map(len, self.by_execution.values()))

    def all(self) -> list[Subscriber]:
        return [*self.everything, *(s for group in self.by_session.values() for s in group)] + [
            s for group in self.by_execution.values() for s in group
        ]


class Hub:
    def __init__(self) -> None:
        self._tenants: dict[str, _Tenant] = {}
        self._lock = asyncio.Lock()  # connection, SUBSCRIBE and UNSUBSCRIBE happen one at a time
        self._client: redis.asyncio.Redis | None = None
        self._pubsub = None
        self._tasks: list[asyncio.Task] = []
        self._slugs: dict[bytes, str] = {}  # channel → tenant slug
        self._confirmations: dict[bytes, deque[asyncio.Future]] = {}
        self._heard = 0  # messages read, for the heartbeat's liveness check

    # --- subscribers -----------------------------------------------------------------------------------

    async def join(self, subscriber: Subscriber) -> None:
        """Register a subscriber; return once its tenant's subscription is live. Raises HubUnavailable."""
        slug = subscriber.tenant_slug
        tenant = self._tenants.get(slug)
        if tenant is None:
            tenant = self._tenants[slug] = _Tenant(asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().create_task(self._subscribe(slug, tenant))
        first_present = subscriber.marks_presence and tenant.present == 0
        tenant.add(subscriber)
        try:
            await asyncio.shield(tenant.ready)
        except BaseException:
            self.leave(subscriber)
            raise
        if first_present:
            await self._mark_presence([slug])

    def leave(self, subscriber: Subscriber) -> None:
        slug = subscriber.tenant_slug
        tenant = self._tenants.get(slug)
        if tenant is None or not tenant.remove(subscriber):
            return
        if not len(tenant):
            del self._tenants[slug]
            asyncio.get_running_loop().create_task(self._release(slug))

    # --- Redis -----------------------------------------------------------------------------------------

    async def _subscribe(self, slug: str, tenant: _Tenant) -> None:
        try:
            async with self._lock:
                if self._tenants.get(slug) is not tenant:  # everyone left already
                    _fail(tenant.ready, "no subscribers left")
                    return
                await self._connect()
                channel = events_channel(slug).encode()
                confirmed = asyncio.get_running_loop().create_future()
                self._slugs[channel] = slug
                self._confirmations.setdefault(channel, deque()).append(confirmed)
                await self._pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_S)
        except Exception as error:
            logger.warning("event hub: could not subscribe to %s: %r", slug, error)
            _fail(tenant.ready, str(error) or type(error).__name__)
            if self._tenants.get(slug) is tenant:
                del self._tenants[slug]
            return
        if not tenant.ready.done():
            tenant.ready.set_result(None)

    async def _release(self, slug: str) -> None:
        async with self._lock:
            if slug in self._tenants or self._pubsub is None:  # rejoined meanwhile, or the connection is gone
                return
            try:
                if self._tenants:
                    await self._pubsub.unsubscribe(events_channel(slug).encode())
                else:
                    await self._disconnect()  # nobody left in this process: hold no connection
            except Exception as error:
                logger.warning("event hub: could not unsubscribe from %s: %r", slug, error)

    async def _connect(self) -> None:
        if self._pubsub is not None:
            return
        # No silent reconnects: a lost subscription must be noticed (see the module docstring).
        self._client = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0, socket_keepalive=True
        )
        self._pubsub = self._client.pubsub()
        await self._pubsub.connect()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(self._pubsub)), loop.create_task(self._heartbeat(self._pubsub))]

    async def _disconnect(self) -> None:
        pubsub, client, tasks = self._pubsub, self._client, self._tasks
        self._pubsub, self._client, self._tasks = None, None, []
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for future in (f for futures in self._confirmations.values() for f in futures):
            _fail(future, "connection closed")
        self._confirmations.clear()
        self._slugs.clear()
        try:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()
        except Exception:  # closing a broken connection may fail too; it is gone either way
            pass

    async def _lost(self, pubsub, error: BaseException) -> None:
        """The subscription is gone: every local subscriber may have missed events, so each one is told."""
        async with self._lock:
            if pubsub is not self._pubsub:
                return
            logger.warning("event hub: lost the Redis subscription (%r); closing %d tenants' sockets", error, len(self._tenants))
            tenants, self._tenants = self._tenants, {}
            await self._disconnect()
        for tenant in tenants.values():
            if not tenant.ready.done():  # still joining: join() raises, and the consumer refuses its socket
                _fail(tenant.ready, "connection lost")
                continue
            for subscriber in tenant.all():
                subscriber.interrupted()

    async def _read(self, pubsub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                self._heard += 1
                kind = message["type"]
                if kind == "message":
                    await self._dispatch(message["channel"], message["data"])
                elif kind == "subscribe":
                    waiting = self._confirmations.get(message["channel"])
                    if waiting:
                        future = waiting.popleft()
                        if not future.done():
                            future.set_result(None)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            asyncio.get_running_loop().create_task(self._lost(pubsub, error))

    async def _dispatch(self, channel: bytes, data: bytes) -> None:
        tenant = self._tenants.get(self._slugs.get(channel, ""))
        if tenant is None:  # the last local subscriber just left
            return
        text = data.decode()
        event = json.loads(text)
        for count, subscriber in enumerate(tenant.targets(event), 1):
            try:
                sending = subscriber.deliver(event, text)
                if sending is not None:
                    await sending
            except Exception:
                logger.exception("event hub: delivery of %s failed", event.get("id"))
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)

    async def _heartbeat(self, pubsub) -> None:
        """Every heartbeat: PING the subscription (no answer by the next beat = lost) and keep presence flags up."""
        interval = settings.NEXUS_WS_HEARTBEAT_S
        heard = None
        try:
            while True:
                await asyncio.sleep(interval)
                if heard == self._heard:
                    raise TimeoutError(f"no answer to PING within {interval} s")
                present = [slug for slug, tenant in self._tenants.items() if tenant.present]
                if present:
                    await self._mark_presence(present)
                heard = self._heard
                await pubsub.ping()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            asyncio.get_running_loop().create_task(self._lost(pubsub, error))

    async def _mark_presence(self, slugs: list[str]) -> None:
        try:
            await subscribers_mark_async(self._client, slugs)
        except Exception:
            logger.exception("event hub: could not mark subscribers of %s", ", ".join(slugs))


def _fail(future: asyncio.Future, reason: str) -> None:
    if not future.done():
        future.set_exception(HubUnavailable(reason))
        future.exception()  # marked as retrieved: nobody may be waiting for it any more


_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub]" = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """The hub of the running event loop (daphne has one; tests may run several, one after the other)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found
