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
- Tenant isolation: a tenant's sockets are only ever registered under that tenant's channel, named by the
  tenant's id (a deleted tenant's slug, reused, names another tenant).

Access: a socket lives only as long as its credential.
- While connected the hub also listens to the access channel (apps/events/access_notices.py): a notice of a
  revoked key or application, a removed member, a suspended or deleted tenant reaches the sockets of that
  tenant here at once (`access_notice()`), which close with 4401/4403. A notice is read on the same connection,
  in order with the events, so no event published after the change reaches a socket it closed.
- Every NEXUS_WS_RECHECK_S the hub resolves every distinct credential of its sockets again, by the selector
  the handshake used (apps/realtime/auth.py), and hands each socket the answer (`credential_checked()`): an
  expired token, or a notice lost with a broken connection, is caught then.
- Sockets per credential holder are capped across processes (NEXUS_WS_MAX_PER_CREDENTIAL) by a Redis sorted
  set per holder: one member per socket, scored by a lease that the heartbeat renews. A crashed process stops
  renewing, and its slots lapse after SLOT_LEASE_S; a handshake over the cap raises TooManyConnections.

The hub also keeps the presence flag (apps/events/presence.py) of tenants with tenant/execution sockets here.
"""

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
import weakref
from collections import deque
from collections.abc import Awaitable
from typing import Protocol

import redis.asyncio
from django.conf import settings
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from apps.events.fanout import access_channel, events_channel
from apps.events.presence import subscribers_mark_async
from apps.realtime.auth import credentials_resolve, notice_caches_clear

logger = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 5.0
# Daphne (Twisted) only buffers a send; the bytes leave in a later turn of the event loop. Giving the loop a turn
# every few sockets lets the first sockets' frames go out while the hub still works through the rest, and keeps
# pings, handshakes and MCP requests in the same process from waiting behind a whole fan-out.
YIELD_EVERY = 20
RECHECK_BATCH = 100  # credentials resolved per thread hand-off, so handshakes' database work is not held up
# Take a slot only while the holder has fewer than ARGV[1] live ones; Redis's clock scores every lease, so the
# processes' clocks do not matter.
_SLOT_TAKE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[2]), ARGV[3])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
return 1
"""
_SLOT_RENEW = """
local now = redis.call('TIME')
local until = tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], until, ARGV[i]) end
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[1])) + 1)
return 0
"""


class HubUnavailable(Exception):
    """Redis could not be reached or did not confirm the subscription."""


class TooManyConnections(Exception):
    """The credential's holder has NEXUS_WS_MAX_PER_CREDENTIAL sockets open already."""


class Subscriber(Protocol):
    tenant_id: int
    tenant_slug: str
    credential: str  # the raw credential, resolved again every NEXUS_WS_RECHECK_S
    credential_holder: str  # whom the per-credential cap counts
    session_id: str | None  # set: only this session's events
    execution_id: str | None  # set: only this run's events
    marks_presence: bool

    def deliver(self, event: dict, text: str) -> Awaitable[None] | None: ...

    def interrupted(self) -> None: ...

    def access_notice(self, notice: dict) -> bool: ...  # True: resolve its credential again now

    def credential_checked(self, resolved) -> None: ...


def slot_lease_s() -> float:
    """How long a socket's slot outlives its process's last heartbeat."""
    return max(3.0 * settings.NEXUS_WS_HEARTBEAT_S, 10.0)


def _slot_key(holder: str) -> str:
    # Keys, unlike pub/sub channels, belong to the Redis database: no installation prefix needed.
    return f"nexus:ws:holder:{hashlib.sha256(holder.encode()).hexdigest()[:32]}"


class _Tenant:
    """The local subscribers of one tenant, indexed the way events are routed."""

    __slots__ = ("slug", "everything", "by_session", "by_execution", "present", "ready")

    def __init__(self, slug: str, ready: asyncio.Future) -> None:
        self.slug = slug
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
            if subscriber.session_id is not None:
                del self.by_session[subscriber.session_id]
            elif subscriber.execution_id is not None:
                del self.by_execution[subscriber.execution_id]
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
        self._tenants: dict[int, _Tenant] = {}
        self._lock = asyncio.Lock()  # connection, SUBSCRIBE and UNSUBSCRIBE happen one at a time
        self._client: redis.asyncio.Redis | None = None
        self._pubsub: PubSub | None = None
        self._tasks: list[asyncio.Task] = []
        self._channels: dict[bytes, int] = {}  # channel → tenant id
        self._confirmations: dict[bytes, deque[asyncio.Future]] = {}
        self._heard = 0  # messages read, for the heartbeat's liveness check
        # The per-credential cap: each local socket's slot (holder key, member), on a client of its own that
        # outlives a lost subscription (the sockets closing then still free their slots).
        self._slots: dict[Subscriber, tuple[str, str]] = {}
        self._slot_client: redis.asyncio.Redis | None = None
        self._slot_lock = asyncio.Lock()

    # --- subscribers -----------------------------------------------------------------------------------

    async def join(self, subscriber: Subscriber) -> None:
        """Register a subscriber; return once its tenant's subscription is live.
        Raises TooManyConnections over the per-credential cap, HubUnavailable without Redis."""
        await self._slot_take(subscriber)
        tenant_id = subscriber.tenant_id
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            tenant = self._tenants[tenant_id] = _Tenant(subscriber.tenant_slug, asyncio.get_running_loop().create_future())
            asyncio.get_running_loop().create_task(self._subscribe(tenant_id, tenant))
        first_present = subscriber.marks_presence and tenant.present == 0
        tenant.add(subscriber)
        try:
            await asyncio.shield(tenant.ready)
        except BaseException:
            self.leave(subscriber)
            raise
        if first_present:
            await self._mark_presence([tenant.slug])

    def leave(self, subscriber: Subscriber) -> None:
        if subscriber in self._slots:
            asyncio.get_running_loop().create_task(self._slot_free(subscriber))
        tenant_id = subscriber.tenant_id
        tenant = self._tenants.get(tenant_id)
        if tenant is None or not tenant.remove(subscriber):
            return
        if not len(tenant):
            del self._tenants[tenant_id]
            asyncio.get_running_loop().create_task(self._release(tenant_id))

    def subscribers(self) -> list[Subscriber]:
        """Every local subscriber whose tenant's subscription is live."""
        return [s for tenant in list(self._tenants.values()) if tenant.ready.done() for s in tenant.all()]

    # --- access ----------------------------------------------------------------------------------------

    def _notice(self, data: bytes) -> None:
        try:
            notice = json.loads(data)
            tenant_id = int(notice["tenant"])
        except (ValueError, KeyError, TypeError):
            logger.warning("event hub: ignored a malformed access notice %r", data[:200])
            return
        notice_caches_clear()
        tenant = self._tenants.get(tenant_id)
        again = []
        for subscriber in tenant.all() if tenant is not None else ():
            try:
                if subscriber.access_notice(notice):
                    again.append(subscriber)
            except Exception:
                logger.exception("event hub: an access notice failed on a socket")
        if again:
            asyncio.get_running_loop().create_task(self._recheck_now(again))

    async def _recheck_now(self, subscribers: list[Subscriber]) -> None:
        try:
            await self.recheck(subscribers)
        except Exception:  # the periodic re-check tries again
            logger.exception("event hub: could not re-check the sockets an access notice named")

    async def recheck(self, subscribers: list[Subscriber] | None = None) -> int:
        """Resolve the credential of every local socket (or of `subscribers`) again and hand each socket the
        answer; returns how many credentials were resolved."""
        by_credential: dict[str, list[Subscriber]] = {}
        for subscriber in self.subscribers() if subscribers is None else subscribers:
            by_credential.setdefault(subscriber.credential, []).append(subscriber)
        credentials = list(by_credential)
        for start in range(0, len(credentials), RECHECK_BATCH):
            resolved = await credentials_resolve(credentials[start : start + RECHECK_BATCH])
            for raw, answer in resolved.items():
                for subscriber in by_credential[raw]:
                    try:
                        subscriber.credential_checked(answer)
                    except Exception:
                        logger.exception("event hub: a credential re-check failed on a socket")
        return len(credentials)

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.NEXUS_WS_RECHECK_S)
            try:
                await self.recheck()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is away: keep the sockets, try again at the next beat
                logger.exception("event hub: could not re-check the sockets' credentials")

    # --- per-credential cap ----------------------------------------------------------------------------

    def _slots_redis(self) -> redis.asyncio.Redis:
        if self._slot_client is None:
            self._slot_client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2.0, socket_timeout=2.0)
        return self._slot_client

    async def _slot_take(self, subscriber: Subscriber) -> None:
        cap = settings.NEXUS_WS_MAX_PER_CREDENTIAL
        if cap <= 0:
            return
        key, member = _slot_key(subscriber.credential_holder), uuid.uuid4().hex
        async with self._slot_lock:
            try:
                taken = await self._slots_redis().eval(_SLOT_TAKE, 1, key, cap, slot_lease_s(), member)
            except Exception as error:
                raise HubUnavailable(f"could not count the credential's sockets: {error!r}") from None
            if not taken:
                raise TooManyConnections(f"at most {cap} sockets per credential")
            self._slots[subscriber] = (key, member)

    async def _slot_free(self, subscriber: Subscriber) -> None:
        async with self._slot_lock:
            slot = self._slots.pop(subscriber, None)
            if slot is None:
                return
            try:
                await self._slots_redis().zrem(*slot)
            except Exception as error:  # the lease lapses on its own
                logger.warning("event hub: could not free a socket's slot: %r", error)
            if not self._slots and self._slot_client is not None:  # no sockets: hold no connection
                client, self._slot_client = self._slot_client, None
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _slots_renew(self) -> None:
        async with self._slot_lock:
            if not self._slots:
                return
            by_key: dict[str, list[str]] = {}
            for key, member in self._slots.values():
                by_key.setdefault(key, []).append(member)
            lease = slot_lease_s()
            async with self._slots_redis().pipeline(transaction=False) as pipe:
                for key, members in by_key.items():
                    pipe.eval(_SLOT_RENEW, 1, key, lease, *members)
                await pipe.execute()

    # --- Redis -----------------------------------------------------------------------------------------

    async def _subscribe(self, tenant_id: int, tenant: _Tenant) -> None:
        try:
            async with self._lock:
                if self._tenants.get(tenant_id) is not tenant:  # everyone left already
                    _fail(tenant.ready, "no subscribers left")
                    return
                pubsub = await self._connect()
                channel = events_channel(tenant_id).encode()
                confirmed = asyncio.get_running_loop().create_future()
                self._channels[channel] = tenant_id
                self._confirmations.setdefault(channel, deque()).append(confirmed)
                await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_S)
        except Exception as error:
            logger.warning("event hub: could not subscribe to tenant %s (%s): %r", tenant_id, tenant.slug, error)
            _fail(tenant.ready, str(error) or type(error).__name__)
            if self._tenants.get(tenant_id) is tenant:
                del self._tenants[tenant_id]
            return
        if not tenant.ready.done():
            tenant.ready.set_result(None)

    async def _release(self, tenant_id: int) -> None:
        async with self._lock:
            if tenant_id in self._tenants or self._pubsub is None:  # rejoined meanwhile, or the connection is gone
                return
            try:
                if self._tenants:
                    await self._pubsub.unsubscribe(events_channel(tenant_id).encode())
                else:
                    await self._disconnect()  # nobody left in this process: hold no connection
            except Exception as error:
                logger.warning("event hub: could not unsubscribe from tenant %s: %r", tenant_id, error)

    async def _connect(self) -> PubSub:
        if self._pubsub is not None:
            return self._pubsub
        # No silent reconnects: a lost subscription must be noticed (see the module docstring).
        client = self._client = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2.0, socket_keepalive=True
        )
        pubsub = self._pubsub = client.pubsub()
        await pubsub.connect()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(pubsub)),
            loop.create_task(self._heartbeat(pubsub)),
            loop.create_task(self._recheck_loop()),
        ]
        # Access notices first: a socket joins only once a notice about it would reach this process.
        channel = access_channel().encode()
        confirmed = loop.create_future()
        self._confirmations.setdefault(channel, deque()).append(confirmed)
        try:
            await pubsub.subscribe(channel)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_S)
        except BaseException:
            await self._disconnect()
            raise
        return pubsub

    async def _disconnect(self) -> None:
        pubsub, client, tasks = self._pubsub, self._client, self._tasks
        self._pubsub, self._client, self._tasks = None, None, []
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for future in (f for futures in self._confirmations.values() for f in futures):
            _fail(future, "connection closed")
        self._confirmations.clear()
        self._channels.clear()
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
                    if message["channel"] == access_channel().encode():
                        self._notice(message["data"])
                    else:
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
        tenant = self._tenants.get(self._channels.get(channel, -1))
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
                present = [tenant.slug for tenant in self._tenants.values() if tenant.present]
                if present:
                    await self._mark_presence(present)
                try:
                    await self._slots_renew()
                except Exception as error:
                    logger.warning("event hub: could not renew the sockets' slots: %r", error)
                heard = self._heard
                await pubsub.ping()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            asyncio.get_running_loop().create_task(self._lost(pubsub, error))

    async def _mark_presence(self, slugs: list[str]) -> None:
        try:
            if self._client is None:
                raise HubUnavailable("no Redis connection")
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
