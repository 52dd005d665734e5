"""Realtime fan-out benchmark: publish-to-receive latency with N WebSocket subscribers on one node, and deliveries/s.

Starts its own `nexus up` (tests/e2e's Installation: fresh database, its own Redis database, free ports,
HAProxy → one daphne), opens FANOUT_SUBSCRIBERS (200) WebSockets on one session from FANOUT_CLIENT_PROCS (2)
separate client processes (so the sockets' own parsing does not sit in the publisher's event loop), and
publishes events by executing a hello-world bound to the session through the REST API (each run publishes one
`execution.completed`, stored and fanned out by the same publish() every channel uses).

Latency of a delivery = the client's wall clock when the frame's bytes arrive − the event's `ts` (taken by
publish() before the INSERT commits; same machine, same clock). So it covers commit, the Redis hop, the daphne
fan-out, HAProxy, the socket and the client's own queueing. The clients use a minimal WebSocket reader
(FANOUT_CLIENT=websockets for the websockets library, which costs the shared CPU more); FANOUT_DIRECT=1 skips
HAProxy; FANOUT_WS_ORIGIN=ws://host:port[,…] points the client processes (in turn) at other servers.

Phases, each a schedule of events started at a fixed rate (at most FANOUT_CONCURRENCY API calls in flight),
separated by waiting until every delivery arrived (or FANOUT_SETTLE_S passed):
  latency      FANOUT_EVENTS (100) events at FANOUT_RATE (20) events/s — the target's measurement;
  sustained    FANOUT_PHASE_S (5) s at each rate of FANOUT_RATES ("20,30,40,60") events/s — deliveries/s.
Reported per phase: achieved publish rate, deliveries received/expected, deliveries/s, p50/p95/p99/max, the
median first-socket latency and fan-out spread (last socket − first, per event), and CPU use of daphne, of the
client processes and of the publisher. Everything is bounded by FANOUT_TIMEOUT_S.

Usage: .venv/bin/python bench/realtime/fanout.py    (env: FANOUT_SUBSCRIBERS, FANOUT_RATES, … as above)
"""

import asyncio
import functools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

SUBSCRIBERS = int(os.environ.get("FANOUT_SUBSCRIBERS", 200))
CLIENT_PROCS = int(os.environ.get("FANOUT_CLIENT_PROCS", 2))
LATENCY_EVENTS = int(os.environ.get("FANOUT_EVENTS", 100))
LATENCY_RATE = float(os.environ.get("FANOUT_RATE", 20))
RATES = [float(r) for r in os.environ.get("FANOUT_RATES", "20,30,40,60").split(",") if r.strip()]
PHASE_S = float(os.environ.get("FANOUT_PHASE_S", 5))
CONCURRENCY = int(os.environ.get("FANOUT_CONCURRENCY", 8))
SETTLE_S = float(os.environ.get("FANOUT_SETTLE_S", 15))
TIMEOUT_S = float(os.environ.get("FANOUT_TIMEOUT_S", 240))
REDIS_DB = int(os.environ.get("FANOUT_REDIS_DB", 12))
DIRECT = os.environ.get("FANOUT_DIRECT", "") == "1"
CLIENT = os.environ.get("FANOUT_CLIENT", "lean")
REPO = Path(__file__).resolve().parents[2]


# --- client processes ------------------------------------------------------------------------------------


class _LeanSocket(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455, text frames, answers pings) that timestamps a frame the moment its
    bytes arrive: ~10 µs a message against ~50 for a full client library, so 200 sockets on the benchmark's
    own box take less of the CPU the server under test needs (FANOUT_CLIENT=websockets compares)."""

    def __init__(self, request: bytes, on_text, opened: asyncio.Future, closed: asyncio.Future) -> None:
        self.request, self.on_text, self.opened, self.closed = request, on_text, opened, closed
        self.buffer = b""
        self.upgraded = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data
        if not self.upgraded:
            head, separator, buffer = buffer.partition(b"\r\n\r\n")
            if not separator:
                self.buffer = head
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(head.split(b"\r\n")[0].decode()))
                return
            self.upgraded = True
            self.opened.set_result(None)
        while len(buffer) >= 2:
            opcode, length, offset = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
            if length == 126:
                length, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                length, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + length:
                break
            payload, buffer = buffer[offset : offset + length], buffer[offset + length :]
            if opcode == 0x1:
                self.on_text(payload, now)
            elif opcode == 0x9:
                self.transport.write(_client_frame(0xA, payload))
            elif opcode == 0x8 and not self.closed.done():
                self.closed.set_result(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005)
        self.buffer = buffer

    def connection_lost(self, error) -> None:
        if not self.closed.done():
            self.closed.set_result(1006)


def _client_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked  # control frames: payload < 126


def _client_process(url: str, key: str, sockets: int, received, control) -> None:
    """Open `sockets` WebSockets, then record (execution_id, latency ms, receive time) of every execution.completed
    until told to stop; send the records, early closes and the process's CPU seconds back over `control`."""
    import base64
    from urllib.parse import urlsplit

    records: list[tuple[str, float, float]] = []
    closed: list[int] = []

    def on_text(raw: bytes, now: float) -> None:
        event = json.loads(raw)
        if event["type"] == "execution.completed":
            ts = datetime.fromisoformat(event["ts"]).timestamp()
            records.append((event["data"]["execution_id"], (now - ts) * 1000, now))
            received.value += 1

    async def lean() -> list:
        parts = urlsplit(url)
        loop = asyncio.get_running_loop()
        sockets_closed = []
        for _ in range(sockets):
            request = (
                f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
                f"Authorization: Bearer {key}\r\n\r\n"
            ).encode()
            opened, gone = loop.create_future(), loop.create_future()
            protocol = functools.partial(_LeanSocket, request, on_text, opened, gone)
            await loop.create_connection(protocol, parts.hostname, parts.port)
            await asyncio.wait_for(opened, 10)
            sockets_closed.append(gone)
        return sockets_closed

    async def library() -> list:
        import websockets

        async def subscriber(gone: asyncio.Future) -> None:
            headers = {"Authorization": f"Bearer {key}"}
            async with websockets.connect(url, additional_headers=headers, max_queue=None, ping_interval=None) as ws:
                opened.set_result(None)
                try:
                    async for raw in ws:
                        on_text(raw, time.time())
                except websockets.ConnectionClosed as error:
                    gone.set_result(error.rcvd.code if error.rcvd else 1006)

        sockets_closed = []
        for _ in range(sockets):
            opened, gone = asyncio.get_running_loop().create_future(), asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(subscriber(gone))
            await asyncio.wait_for(opened, 10)
            sockets_closed.append(gone)
        return sockets_closed

    async def main() -> None:
        sockets_closed = await (library() if CLIENT == "websockets" else lean())
        control.send("ready")
        await asyncio.get_running_loop().run_in_executor(None, control.recv)  # "stop"
        closed.extend(gone.result() for gone in sockets_closed if gone.done())

    cpu_before = time.process_time()
    asyncio.run(main())
    control.send({"records": records, "closed": closed, "cpu_s": time.process_time() - cpu_before})


# --- measurement helpers ---------------------------------------------------------------------------------


def _pct(values: list[float], p: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))], 2) if ordered else None


def _daphne_pid(port: int) -> int | None:
    """The `realtime` process (daphne on NEXUS_PORT + 2)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"daphne" in a for a in argv) and str(port + 2).encode() in argv:
                return int(entry.name)
    return None


def _cpu_seconds(pid: int | None) -> float:
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the publisher ---------------------------------------------------------------------------------------


async def _publish_phase(client, session_id: str, *, events: int, rate: float) -> tuple[list[str], float]:
    """Start `events` session-bound runs at `rate`/s (at most CONCURRENCY in flight); their ids and the elapsed s."""
    slots = asyncio.Semaphore(CONCURRENCY)
    ids: list[str] = []

    async def execute(n: int) -> None:
        try:
            body = {"inputs": {"name": f"f{n}"}, "session": session_id}
            response = await client.post("/api/v1/workflows/hello-world/execute/", json=body)
            response.raise_for_status()
            ids.append(response.json()["execution_id"])
        finally:
            slots.release()

    started = time.monotonic()
    calls = []
    for n in range(events):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        await slots.acquire()
        calls.append(asyncio.create_task(execute(n)))
    await asyncio.gather(*calls)
    return ids, time.monotonic() - started


async def _settle(received, expected: int) -> None:
    deadline = time.monotonic() + SETTLE_S
    while sum(r.value for r in received) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def _drive(base: str, key: str, session_id: str, received, daphne: int | None, clients: list[int]) -> list[dict]:
    import httpx

    phases: list[dict] = []
    plan = [("latency", LATENCY_EVENTS, LATENCY_RATE)] + [
        (f"sustained {rate:g}/s", max(1, round(rate * PHASE_S)), rate) for rate in RATES
    ]
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30, limits=limits) as client:
        await _publish_phase(client, session_id, events=5, rate=50)  # warm-up: connections, caches
        await _settle(received, 5 * SUBSCRIBERS)
        for name, events, rate in plan:
            before = sum(r.value for r in received)
            cpu = (_cpu_seconds(daphne), sum(_cpu_seconds(pid) for pid in clients), time.process_time())
            started, started_at = time.monotonic(), time.time()
            ids, publish_s = await _publish_phase(client, session_id, events=events, rate=rate)
            await _settle(received, before + len(ids) * SUBSCRIBERS)
            wall = time.monotonic() - started
            used = (_cpu_seconds(daphne) - cpu[0], sum(_cpu_seconds(pid) for pid in clients) - cpu[1])
            phases.append(
                {
                    "phase": name,
                    "ids": set(ids),
                    "target_rate": rate,
                    "events": len(ids),
                    "started_at": started_at,
                    "publish_s": publish_s,
                    "wall_s": wall,
                    "daphne_cpu_s": used[0],
                    "clients_cpu_s": used[1],
                    "publisher_cpu_s": time.process_time() - cpu[2],
                }
            )
            await asyncio.sleep(0.5)
    return phases


def _report(phases: list[dict], records: list[tuple[str, float, float]], closed: list[int]) -> dict:
    by_run: dict[str, list[tuple[float, float]]] = {}
    for run_id, latency, received_at in records:
        by_run.setdefault(run_id, []).append((latency, received_at))
    rows = []
    for phase in phases:
        deliveries = [d for run_id in phase["ids"] for d in by_run.get(run_id, ())]
        latencies = [latency for latency, _ in deliveries]
        expected = phase["events"] * SUBSCRIBERS
        # From the phase's first publish to its last delivery: a server that falls behind stretches the window.
        window = max((at for _, at in deliveries), default=phase["started_at"]) - phase["started_at"]
        # Per event: its first socket's latency (publish → Redis → daphne → one socket) and how long daphne took
        # to reach the last of the sockets after the first (the fan-out itself).
        firsts = [min(lat for lat, _ in by_run[r]) for r in phase["ids"] if r in by_run]
        spreads = [max(at for _, at in by_run[r]) - min(at for _, at in by_run[r]) for r in phase["ids"] if r in by_run]
        rows.append(
            {
                "phase": phase["phase"],
                "events": phase["events"],
                "events_per_s": round(phase["events"] / phase["publish_s"], 1),
                "deliveries": f"{len(latencies)}/{expected}",
                "deliveries_per_s": round(len(latencies) / max(window, phase["publish_s"])),
                "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
                "p95_ms": _pct(latencies, 95),
                "p99_ms": _pct(latencies, 99),
                "max_ms": round(max(latencies), 2) if latencies else None,
                "first_socket_p50_ms": round(statistics.median(firsts), 2) if firsts else None,
                "spread_p50_ms": round(1000 * statistics.median(spreads), 2) if spreads else None,
                "daphne_cpu_pct": round(100 * phase["daphne_cpu_s"] / phase["wall_s"], 1),
                "daphne_cpu_us_per_delivery": round(1e6 * phase["daphne_cpu_s"] / max(1, len(latencies)), 1),
                "clients_cpu_pct": round(100 * phase["clients_cpu_s"] / phase["wall_s"], 1),
                "publisher_cpu_pct": round(100 * phase["publisher_cpu_s"] / phase["wall_s"], 1),
            }
        )
    return {
        "subscribers": SUBSCRIBERS,
        "client_processes": CLIENT_PROCS,
        "through": "daphne directly" if DIRECT else "HAProxy",
        "client": CLIENT,
        "closed_early": closed,
        "phases": rows,
    }


def main() -> None:
    sys.path.insert(0, str(REPO))
    from tests.e2e.conftest import Installation, http

    installation = Installation(Path(tempfile.mkdtemp(prefix="nexus-fanout-")), redis_db=REDIS_DB)
    # Every subscriber uses the one key: lift the per-credential socket cap (50 by default) above them.
    installation.env["NEXUS_WS_MAX_PER_CREDENTIAL"] = str(SUBSCRIBERS + 10)
    context = multiprocessing.get_context("spawn")
    processes, controls = [], []
    try:
        installation.start()
        key = installation.credentials["api_key"]
        assert installation.cli("create", "workflow", "hello-world", "--template=basic").returncode == 0
        assert installation.cli("deploy", "hello-world").returncode == 0
        status, session = http("POST", f"{installation.base_url}/api/v1/sessions/", {"user": "bench"}, key=key)
        assert status == 201, session
        # FANOUT_DIRECT=1 connects the sockets to daphne itself instead of through HAProxy (to attribute costs);
        # FANOUT_WS_ORIGIN to other servers of the same installation, comma-separated, one per client process in
        # turn (to compare ASGI servers, or several realtime processes).
        origin = f"ws://127.0.0.1:{installation.port + 2}" if DIRECT else installation.base_url.replace("http://", "ws://")
        origins = (os.environ.get("FANOUT_WS_ORIGIN") or origin).split(",")
        received = [context.Value("q", 0, lock=False) for _ in range(CLIENT_PROCS)]
        shares = [SUBSCRIBERS // CLIENT_PROCS + (i < SUBSCRIBERS % CLIENT_PROCS) for i in range(CLIENT_PROCS)]
        for number, (share, count) in enumerate(zip(shares, received, strict=True)):
            url = origins[number % len(origins)] + f"/ws/sessions/{session['id']}/"
            ours, theirs = context.Pipe()
            process = context.Process(target=_client_process, args=(url, key, share, count, theirs), daemon=True)
            process.start()
            processes.append(process)
            controls.append(ours)
        for control in controls:
            if not control.poll(90) or control.recv() != "ready":
                raise RuntimeError("a client process did not open its sockets")
        load_before = os.getloadavg()
        phases = asyncio.run(
            asyncio.wait_for(
                _drive(
                    installation.base_url,
                    key,
                    session["id"],
                    received,
                    _daphne_pid(installation.port),
                    [p.pid for p in processes],
                ),
                timeout=TIMEOUT_S,
            )
        )
        records, closed = [], []
        for control in controls:
            control.send("stop")
        for control in controls:
            if not control.poll(60):
                raise RuntimeError("a client process did not report")
            result = control.recv()
            records += result["records"]
            closed += result["closed"]
        report = _report(phases, records, closed)
        report["load_average_before_after"] = [round(x, 2) for x in (load_before[0], os.getloadavg()[0])]
        print(json.dumps(report, indent=2))
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
        installation.stop()
        installation.drop()


if __name__ == "__main__":
    main()
