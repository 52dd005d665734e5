"""Realtime fan-out benchmark: publish-to-receive latency with N WebSocket subscribers on one node, and events/s.

Starts its own `nexus up` (tests/e2e's Installation: fresh database, free ports, HAProxy → daphne), opens
FANOUT_SUBSCRIBERS (200) WebSockets on one session, publishes events by executing a hello-world bound to
the session (each run publishes one `execution.completed`), and measures, per delivered event, receive time
minus the event's `ts` (same clock). Phase 1 paces FANOUT_RATE events/s (latency); phase 2 publishes as fast
as FANOUT_CONCURRENCY callers can (throughput). Everything is bounded by FANOUT_TIMEOUT_S.

Usage: .venv/bin/python bench/realtime/fanout.py
"""

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.e2e.conftest import Installation, http  # noqa: E402

SUBSCRIBERS = int(os.environ.get("FANOUT_SUBSCRIBERS", 200))
PACED_EVENTS = int(os.environ.get("FANOUT_EVENTS", 100))
RATE = float(os.environ.get("FANOUT_RATE", 20))
BURST_EVENTS = int(os.environ.get("FANOUT_BURST_EVENTS", 200))
CONCURRENCY = int(os.environ.get("FANOUT_CONCURRENCY", 4))
TIMEOUT_S = float(os.environ.get("FANOUT_TIMEOUT_S", 120))


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


async def _subscriber(url: str, key: str, latencies: list[float], counts: dict, ready: asyncio.Event, total: list[int]):
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, max_queue=None) as ws:
        total[0] += 1
        if total[0] == SUBSCRIBERS:
            ready.set()
        async for raw in ws:
            now = time.time()
            event = json.loads(raw)
            if event["type"] != "execution.completed":
                continue
            ts = datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()
            latencies.append((now - ts) * 1000)
            counts["n"] = counts.get("n", 0) + 1
            counts["last"] = now


async def run(base: str, key: str, session_id: str) -> dict:
    ws_url = base.replace("http://", "ws://") + f"/ws/sessions/{session_id}/"
    latencies: list[float] = []
    counts: dict = {}
    ready, opened = asyncio.Event(), [0]
    tasks = [asyncio.create_task(_subscriber(ws_url, key, latencies, counts, ready, opened)) for _ in range(SUBSCRIBERS)]
    await asyncio.wait_for(ready.wait(), timeout=60)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:

        async def execute(n: int) -> None:
            body = {"inputs": {"name": f"f{n}"}, "session": session_id}
            response = await client.post("/api/v1/workflows/hello-world/execute/", json=body)
            response.raise_for_status()

        for n in range(PACED_EVENTS):  # phase 1: paced, for latency
            started = time.monotonic()
            await execute(n)
            await asyncio.sleep(max(0.0, 1 / RATE - (time.monotonic() - started)))
        await _settle(latencies, PACED_EVENTS * SUBSCRIBERS)
        paced = list(latencies)
        latencies.clear()
        burst_started = time.time()
        queue = list(range(BURST_EVENTS))

        async def caller():
            while queue:
                await execute(queue.pop())

        await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))  # phase 2: as fast as callers go
        published_s = time.time() - burst_started
        await _settle(latencies, BURST_EVENTS * SUBSCRIBERS)
        delivered_s = counts.get("last", time.time()) - burst_started
    for task in tasks:
        task.cancel()
    return {
        "subscribers": SUBSCRIBERS,
        "paced_events": PACED_EVENTS,
        "paced_rate": RATE,
        "paced_deliveries": len(paced),
        "latency_p50_ms": round(statistics.median(paced), 2) if paced else None,
        "latency_p95_ms": round(_pct(paced, 95), 2),
        "latency_p99_ms": round(_pct(paced, 99), 2),
        "latency_max_ms": round(max(paced), 2) if paced else None,
        "burst_events": BURST_EVENTS,
        "burst_deliveries": len(latencies),
        "burst_publish_s": round(published_s, 2),
        "burst_events_per_s_published": round(BURST_EVENTS / published_s, 1),
        "deliveries_per_s": round(len(latencies) / delivered_s, 1),
        "burst_latency_p95_ms": round(_pct(latencies, 95), 2),
    }


async def _settle(latencies: list[float], expected: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def main() -> None:
    installation = Installation(Path(tempfile.mkdtemp(prefix="nexus-fanout-")), redis_db=8)
    try:
        installation.start()
        key = installation.credentials()["api_key"] if callable(installation.credentials) else installation.credentials["api_key"]
        assert installation.cli("create", "workflow", "hello-world", "--template=basic").returncode == 0
        assert installation.cli("deploy", "hello-world").returncode == 0
        status, session = http("POST", f"{installation.base_url}/api/v1/sessions/", {"user": "bench"}, key=key)
        assert status == 201, session
        result = asyncio.run(asyncio.wait_for(run(installation.base_url, key, session["id"]), timeout=TIMEOUT_S))
        print(json.dumps(result, indent=2))
    finally:
        installation.stop()
        installation.drop()


if __name__ == "__main__":
    main()
