#!/usr/bin/env python3
"""MCP benchmark (issue 5): `tools/list` and a hello-world `tools/call` over Streamable HTTP through HAProxy.

Starts its own `nexus up` (like bench/hello.sh: a fresh database `nexus_bench_mcp`, Redis db 8, a free port, a
temporary NEXUS_DATA_DIR), creates and deploys `hello-world` with the CLI, then drives /mcp with the official
`mcp` SDK client (`Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=...)))`):

  1 client:   --calls (≥200) sequential tools/list, then as many tools/call of workflow_hello-world: p50/p95/p99
  16 clients: --concurrency clients (spread over --procs load processes) for --duration s per method:
              throughput, p50/p95/p99

Every call's latency is the SDK's whole `list_tools()` / `call_tool()` await, client overhead included (this is
what an agent waits). Loopback only; every phase is bounded in time. Prints one summary and, with --json FILE,
writes the numbers there. Persistence check: executions with channel `mcp` before and after == calls made.

Usage: .venv/bin/python bench/mcp/bench.py [--calls 300] [--duration 10] [--concurrency 16] [--procs 2]
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NEXUS = str(REPO / ".venv" / "bin" / "nexus")
DB_NAME = "nexus_bench_mcp"
REDIS_DB = 8
WORKFLOW = "hello-world"


# ----------------------------------------------------------------------------------------------- nexus up


def free_port(start: int, span: int = 3) -> int:
    port = start
    for _ in range(200):
        ok = True
        for p in range(port, port + span):
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("0.0.0.0", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
        port += span
    raise RuntimeError(f"no free port block from {start}")


def get_json(url: str, key: str | None = None, timeout: float = 5):
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (loopback http)
        return json.load(response)


class Nexus:
    def __init__(self, port_start: int):
        self.port = free_port(port_start)
        self.base = f"http://127.0.0.1:{self.port}"
        self.data = Path(tempfile.mkdtemp(prefix="nexus-bench-mcp."))
        self.log_path = REPO / "bench" / "mcp" / "nexus-up.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "nexus_site.settings.local",
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
            "NEXUS_PORT": str(self.port),
            "NEXUS_DATA_DIR": str(self.data),
            "NEXUS_TENANT": "default",
        }
        self.process: subprocess.Popen | None = None

    def fresh(self) -> None:
        drop = f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)"
        subprocess.run(
            ["psql", "-q", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c", drop], check=True, capture_output=True
        )
        subprocess.run(["redis-cli", "-n", str(REDIS_DB), "flushdb"], check=True, capture_output=True)

    def start(self, timeout: float = 120) -> float:
        started = time.monotonic()
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [NEXUS, "up"], env=self.env, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(f"nexus up exited {self.process.returncode}; see {self.log_path}")
            try:
                if get_json(f"{self.base}/health", timeout=2).get("healthy"):
                    return time.monotonic() - started
            except Exception:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"nexus not healthy after {timeout} s; see {self.log_path}")

    def cli_json(self, *args: str) -> dict:
        result = subprocess.run([NEXUS, *args, "--json"], env=self.env, cwd=REPO, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise RuntimeError(f"nexus {' '.join(args)}: {result.stderr}")
        return json.loads(result.stdout)

    def key(self) -> str:
        creds = self.data / "credentials.json"
        for _ in range(50):
            if creds.exists() and creds.stat().st_size:
                break
            time.sleep(0.2)
        return json.loads(creds.read_text())["api_key"]

    def mcp_runs(self, key: str) -> int:
        return int(get_json(f"{self.base}/api/v1/executions/?channel=mcp&workflow={WORKFLOW}&limit=1", key)["count"])

    def stop(self) -> float:
        started = time.monotonic()
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.data, ignore_errors=True)
        return time.monotonic() - started


# ---------------------------------------------------------------------------------------------- load


def _client(url: str, key: str):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http))


async def _one(client, method: str, n: int):
    if method == "tools/list":
        result = await client.list_tools()
        if not any(t.name == f"workflow_{WORKFLOW}" for t in result.tools):
            raise RuntimeError("workflow_hello-world missing from tools/list")
    else:
        result = await client.call_tool(f"workflow_{WORKFLOW}", {"name": f"u{n}"})
        if result.is_error or result.structured_content != {"message": f"Hello, u{n}!"}:
            raise RuntimeError(f"bad tools/call result: {result}")


async def sequential(url: str, key: str, method: str, calls: int, warmup: int) -> list[float]:
    async with _client(url, key) as client:
        await client.list_tools()  # the SDK validates call results against the listed output schema
        for n in range(warmup):
            await _one(client, method, n)
        latencies = []
        for n in range(calls):
            started = time.perf_counter()
            await _one(client, method, n)
            latencies.append(time.perf_counter() - started)
        return latencies


async def _concurrent(url: str, key: str, method: str, clients: int, duration: float, offset: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0

    async def worker(index: int, ready: asyncio.Event, stop_at: list[float]) -> None:
        nonlocal errors
        async with _client(url, key) as client:
            await client.list_tools()
            await _one(client, method, 0)  # warm: connection open, first call done
            await ready.wait()
            n = 0
            while time.perf_counter() < stop_at[0]:
                started = time.perf_counter()
                try:
                    await _one(client, method, offset + index * 1_000_000 + n)
                except Exception:
                    errors += 1
                else:
                    latencies.append(time.perf_counter() - started)
                n += 1

    ready, stop_at = asyncio.Event(), [0.0]
    tasks = [asyncio.create_task(worker(i, ready, stop_at)) for i in range(clients)]
    await asyncio.sleep(1.0)
    stop_at[0] = time.perf_counter() + duration
    ready.set()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=duration + 60)
    return latencies, errors


def _load_process(args: tuple) -> tuple[list[float], int]:
    return asyncio.run(_concurrent(*args))


def concurrent(url: str, key: str, method: str, clients: int, duration: float, procs: int) -> tuple[list[float], int]:
    procs = max(1, min(procs, clients))
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    jobs = [(url, key, method, share, duration, (i + 1) * 100_000_000) for i, share in enumerate(shares)]
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        results = pool.map(_load_process, jobs)
    return [x for lat, _ in results for x in lat], sum(err for _, err in results)


def daphne_pid(port: int) -> int | None:
    """The `realtime` process (daphne on NEXUS_PORT + 2) that serves /mcp."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(b"daphne" in a for a in argv) and str(port + 2).encode() in argv:
                return int(entry.name)
    return None


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds the process has used so far."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))] * 1000


def summary(latencies: list[float]) -> dict:
    return {
        "n": len(latencies),
        "p50_ms": round(pct(latencies, 50), 2),
        "p95_ms": round(pct(latencies, 95), 2),
        "p99_ms": round(pct(latencies, 99), 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="sequential calls per method at 1 client (min 200)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per method at --concurrency")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--procs", type=int, default=2, help="load-generating processes for the concurrent phase")
    parser.add_argument("--port", type=int, default=18300, help="first port tried for NEXUS_PORT")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the results to this file")
    options = parser.parse_args()
    calls = max(options.calls, 200)

    nexus = Nexus(options.port)
    nexus.fresh()
    results: dict = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count()}
    try:
        git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        results["rev"] = git.stdout.strip()
        results["healthy_s"] = round(nexus.start(), 2)
        key = nexus.key()
        nexus.cli_json("create", "workflow", WORKFLOW, "--template=basic")
        nexus.cli_json("deploy", WORKFLOW)
        url = f"{nexus.base}/mcp"
        print(f"nexus up on {nexus.base} (healthy after {results['healthy_s']} s); MCP {url}", flush=True)
        before = nexus.mcp_runs(key)
        calls_made = 0
        daphne = daphne_pid(nexus.port)
        for method in ("tools/list", "tools/call"):
            cpu_before = cpu_seconds(daphne)
            latencies = asyncio.run(asyncio.wait_for(sequential(url, key, method, calls, options.warmup), timeout=300))
            served = calls + options.warmup + 2  # + the server/discover probe and the first tools/list
            cpu_ms = (cpu_seconds(daphne) - cpu_before) * 1000 / served
            results[f"{method} c=1"] = {**summary(latencies), "daphne_cpu_ms_per_request": round(cpu_ms, 2)}
            print(f"{method:10s} c=1   {results[f'{method} c=1']}", flush=True)
            if method == "tools/call":
                calls_made += calls + options.warmup
        for method in ("tools/list", "tools/call"):
            cpu_before = cpu_seconds(daphne)
            latencies, errors = concurrent(url, key, method, options.concurrency, options.duration, options.procs)
            # Served requests include each client's handshake and warm-up; the CPU figure is per request served.
            served = len(latencies) + errors + options.concurrency * 3
            cpu_ms = (cpu_seconds(daphne) - cpu_before) * 1000 / served
            row = {
                **summary(latencies),
                "errors": errors,
                "rps": round(len(latencies) / options.duration, 1),
                "daphne_cpu_ms_per_request": round(cpu_ms, 2),
            }
            results[f"{method} c={options.concurrency}"] = row
            print(f"{method:10s} c={options.concurrency}  {row}", flush=True)
            if method == "tools/call":
                calls_made += len(latencies) + options.concurrency  # each client's warm-up call
        time.sleep(1.0)
        after = nexus.mcp_runs(key)
        persisted = after - before
        results["persisted_mcp_runs"] = persisted
        results["tools_call_sent"] = calls_made
        print(f"persistence: {persisted} executions with channel mcp for {calls_made} completed tools/call (+ errors)")
        target = results["tools/list c=1"]["p95_ms"] < 25 and results["tools/call c=1"]["p95_ms"] < 25
        results["target_p95_under_25ms_c1"] = target
        print(f"target p95 < 25 ms at 1 client: {'met' if target else 'NOT met'}")
    finally:
        results["stop_s"] = round(nexus.stop(), 2)
    if options.json_path:
        Path(options.json_path).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
