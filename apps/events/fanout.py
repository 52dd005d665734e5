"""Fan-out of committed events: one Redis PUBLISH per event on its tenant's channel, off the caller's thread, in order.

Every process that publishes (web workers, Celery workers, the CLI, daphne for MCP) hands the committed event to
one background thread per process, which encodes it once as the JSON text subscribers receive and PUBLISHes it
on `events_channel(tenant id)`. Each daphne process subscribes once per tenant with live WebSockets and fans the
text out to its own sockets (apps/realtime/hub.py): no Redis write per subscriber, no per-subscriber queue that
could overflow, and the publisher's cost does not grow with the number of subscribers.

Redis pub/sub is at-most-once: a message published while a subscriber process is disconnected from Redis is
not delivered to it. The stored log (apps/events/models.py) is the record; a client reconnecting with
`?since=evt_…` replays what it missed, and a hub that loses its subscription closes its sockets so they do.

A single queue per process keeps its events in publish order; under load the thread sends everything queued in
one pipeline. Pending events are flushed at exit (the CLI is a short process), and `fanout_flush()` lets tests
wait for delivery.
"""

import atexit
import functools
import json
import logging
import os
import queue
import threading

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

_BATCH = 256


def events_channel(tenant_id: int) -> str:
    """The Redis pub/sub channel of a tenant's events, named by its id: a slug can be reused by a new tenant
    after a deletion, and must not bring it the sockets of the old one."""
    return f"{_channel_prefix(settings.REDIS_URL)}events:{int(tenant_id)}"


def access_channel() -> str:
    """The Redis pub/sub channel of access notices (apps/events/access_notices.py), heard by every daphne hub."""
    return f"{_channel_prefix(settings.REDIS_URL)}access"


@functools.cache
def _channel_prefix(redis_url: str) -> str:
    # Pub/sub names ignore Redis database numbers, so the database is part of the name: installations sharing
    # one Redis server (tests, benchmarks, staging next to production) do not see each other's events.
    return f"nexus:{redis.connection.parse_url(redis_url).get('db', 0)}:"


def event_text(payload: dict) -> str:
    """The one encoding of an event on the wire, sent as is to every WebSocket subscriber."""
    return json.dumps(payload)


class _Fanout:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._pid: int | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # replaced by _start, before the first put

    def _start(self) -> None:
        self._queue = queue.SimpleQueue()
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5.0, socket_connect_timeout=2.0)
        threading.Thread(target=self._drain, args=(self._queue, client), name="nexus-event-fanout", daemon=True).start()
        self._pid = os.getpid()

    def send(self, payload: dict, tenant_id: int) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child (Celery prefork): own thread, own client
                self._pending = 0
                self._start()
            self._pending += 1
        self._queue.put((events_channel(tenant_id), payload))

    def _drain(self, pending: queue.SimpleQueue, client: redis.Redis) -> None:
        while True:
            batch = [pending.get()]
            while len(batch) < _BATCH:
                try:
                    batch.append(pending.get_nowait())
                except queue.Empty:
                    break
            try:
                with client.pipeline(transaction=False) as pipe:
                    for channel, payload in batch:
                        pipe.publish(channel, event_text(payload))
                    pipe.execute()
            except Exception:
                # Stored already: subscribers that reconnect with `since` replay them.
                logger.exception("event fan-out failed for %s", ", ".join(p["id"] for _, p in batch))
            finally:
                with self._lock:
                    self._pending -= len(batch)
                    self._idle.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every event handed over so far is published; False on timeout."""
        with self._lock:
            if self._pid != os.getpid():
                return True
            return self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)


_fanout = _Fanout()


def fanout_send(payload: dict, *, tenant_id: int) -> None:
    """Publish a committed event (DESIGN §8 shape) to its tenant's subscribers, asynchronously, in order."""
    _fanout.send(payload, tenant_id)


def fanout_flush(timeout: float = 5.0) -> bool:
    return _fanout.flush(timeout)


atexit.register(fanout_flush, 5.0)
