"""Fan-out of committed events to the channel layer, off the caller's thread, in publish order.

`async_to_sync(layer.group_send)` from a sync thread starts a new event loop, and with it a new Redis
connection, on every call: milliseconds per event on the request path. Instead each process keeps one
background thread with one loop (and so one connection pool); publish() hands it the message and returns.
A single queue keeps events in publish order. Pending messages are flushed at exit (the CLI is a short
process), and `fanout_flush()` lets tests wait for delivery.
"""

import asyncio
import atexit
import logging
import os
import threading

logger = logging.getLogger(__name__)


class _Fanout:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None

    def _start(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            self._queue = asyncio.Queue()
            loop.create_task(self._drain())
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, name="nexus-event-fanout", daemon=True).start()
        ready.wait()
        self._pid = os.getpid()

    def send(self, groups: list[str], message: dict) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use, or a forked child (Celery prefork): own thread, own loop
                self._pending = 0
                self._start()
            self._pending += 1
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (groups, message))

    async def _drain(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        while True:
            groups, message = await self._queue.get()
            try:
                if layer is not None:
                    for group in groups:
                        await layer.group_send(group, message)
            except Exception:
                logger.exception("event fan-out failed for %s", message.get("event", {}).get("id"))
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every message handed over so far is sent; False on timeout."""
        with self._lock:
            if self._pid != os.getpid():
                return True
            return self._idle.wait_for(lambda: self._pending <= 0, timeout=timeout)


_fanout = _Fanout()


def fanout_send(groups: list[str], message: dict) -> None:
    _fanout.send(groups, message)


def fanout_flush(timeout: float = 5.0) -> bool:
    return _fanout.flush(timeout)


atexit.register(fanout_flush, 5.0)
