"""Worker liveness: each Celery worker reports itself to Redis every few seconds while it runs."""

import contextlib
import threading

from celery.signals import worker_ready, worker_shutdown

from apps.ops.services import WORKER_TTL_S, worker_gone, worker_heartbeat

_stop = threading.Event()


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    hostname = sender.hostname

    def beat() -> None:
        while not _stop.is_set():
            with contextlib.suppress(Exception):  # Redis down: health shows it; keep trying
                worker_heartbeat(hostname)
            _stop.wait(WORKER_TTL_S / 3)

    threading.Thread(target=beat, name="nexus-heartbeat", daemon=True).start()


@worker_shutdown.connect
def _stop_heartbeat(sender=None, **kwargs) -> None:
    _stop.set()
    with contextlib.suppress(Exception):
        worker_gone(sender.hostname)
