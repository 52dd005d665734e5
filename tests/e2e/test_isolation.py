"""Noisy neighbour, with real processes: a burst from one tenant does not hold up another tenant's run under
strict isolation (own queues polled in turn, a per-tenant cap), and does under standard isolation (one shared
queue, first come first served), which shows the measurement measures something."""

import os
import signal
import subprocess
import time
from datetime import datetime

import pytest

from tests.e2e.conftest import CACHE_WAIT_S, REPO, Installation, http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BURST = 30
SLOW = {
    "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 1}}],
    "outputs": {"waited": "nodes.wait"},
}


def _pool(installation: Installation, log) -> subprocess.Popen:
    """One Celery worker with two processes: the whole pool both tenants share."""
    return subprocess.Popen(
        [
            str(REPO / ".venv/bin/celery"),
            "-A",
            "nexus_site",
            "worker",
            "--concurrency=2",
            "-Q",
            "nexus",
            "--hostname=pool@%h",
            "--loglevel=INFO",
        ],
        env=installation.env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _moment(value: str | None) -> float | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() if value else None


def _most_at_once(runs: list[dict]) -> int:
    """The largest number of these runs executing at the same moment (started_at .. finished_at)."""
    edges = []
    for run in runs:
        if run["started_at"]:
            edges.append((_moment(run["started_at"]), 1))
            edges.append((_moment(run["finished_at"]) or time.time(), -1))
    most = current = 0
    for _, step in sorted(edges):  # at equal moments an end sorts before a start: touching runs do not overlap
        current += step
        most = max(most, current)
    return most


class Tenant:
    def __init__(self, installation: Installation, slug: str, key: str):
        self.url = installation.base_url + "/api/v1"
        self.slug = slug
        self.key = key

    def call(self, method: str, path: str, body=None, timeout: float = 30):
        return http(method, self.url + path, body, key=self.key, timeout=timeout)

    def execute(self, wait: bool) -> dict:
        status, body = self.call("POST", "/workflows/slow/execute/", {"inputs": {}, "wait": wait})
        assert status in (200, 202), body
        return body

    def run(self, run_id: str) -> dict:
        status, body = self.call("GET", f"/executions/{run_id}/")
        assert status == 200, body
        return body

    def settle(self, run_ids: list[str], *, cancel: bool = True, timeout: float = 20) -> list[dict]:
        """Cancel what is still queued (unless told not to), then wait until every run is finished."""
        for run_id in run_ids if cancel else ():
            self.call("POST", f"/executions/{run_id}/cancel/")  # 409 for a run that already finished
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [self.run(run_id) for run_id in run_ids]
            if all(run["status"] not in ("queued", "running") for run in runs):
                return runs
            time.sleep(0.3)
        raise AssertionError(f"{self.slug}'s runs did not settle: {[r['status'] for r in runs]}")


def _strict_burst(noisy: Tenant, quiet: Tenant, timings: dict, label: str) -> tuple[list[dict], dict]:
    """noisy sends its burst, then quiet runs once and waits for the result: (noisy's runs, quiet's run)."""
    burst = [noisy.execute(wait=False)["execution_id"] for _ in range(BURST)]
    asked = time.monotonic()
    done = quiet.execute(wait=True)
    timings[label] = waited = time.monotonic() - asked
    assert done["status"] == "completed", done
    assert waited < 4.0, f"{label}: quiet waited {waited:.1f} s behind noisy's burst of {BURST} (15 s of work for the pool)"
    quiet_run = quiet.run(done["execution_id"])
    noisy_runs = noisy.settle(burst)
    assert all(run["status"] in ("completed", "cancelled") for run in noisy_runs)
    # a run refused a slot stayed queued: never marked running, so never counted as an attempt
    assert all(run["attempt"] <= 1 for run in noisy_runs)
    return [run for run in noisy_runs if run["started_at"]], quiet_run


def test_a_noisy_tenant_does_not_starve_a_quiet_one(tmp_path):
    installation = Installation(tmp_path, redis_db=10)
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115
    pool = None
    timings: dict[str, float] = {}
    try:
        installation.cli_json("setup")
        for slug in ("noisy", "quiet"):
            installation.cli_json("tenant", "create", slug)  # strict, capped at NEXUS_TENANT_CONCURRENCY (2)
        keys = {
            slug: installation.cli_json("apikey", "create", "--tenant", slug, "--role", "owner")["key"]
            for slug in ("noisy", "quiet")
        }
        pool = _pool(installation, log)
        installation.start("--only", "proxy,web")
        noisy, quiet = Tenant(installation, "noisy", keys["noisy"]), Tenant(installation, "quiet", keys["quiet"])
        for tenant in (noisy, quiet):
            assert tenant.call("POST", "/workflows/", {"slug": "slow", "definition": SLOW})[0] == 201
            assert tenant.call("POST", "/workflows/slow/deploy/", {})[0] == 200

        # strict, noisy's cap (2) as large as the pool: only the worker's turn-taking between queues lets quiet in
        started, quiet_run = _strict_burst(noisy, quiet, timings, "strict, cap 2")
        assert 1 <= len(started) < BURST and _most_at_once(started) <= 2

        # strict, noisy capped at 1: noisy never runs two at once, and quiet runs beside it
        installation.cli_json("tenant", "update", "noisy", "--max-concurrent-runs=1")
        started, quiet_run = _strict_burst(noisy, quiet, timings, "strict, cap 1")
        assert 1 <= len(started) < BURST and _most_at_once(started) == 1
        assert noisy.call("GET", "/tenants/noisy/")[1]["usage"]["executions_this_period"] == 2 * BURST

        # standard: one shared queue, no cap: quiet's run waits behind the burst
        for slug in ("noisy", "quiet"):
            installation.cli_json("tenant", "update", slug, "--isolation=standard")
        time.sleep(CACHE_WAIT_S)  # the web process re-reads the tenants' isolation (NEXUS_TENANT_LIMITS_CACHE_S)
        burst = [noisy.execute(wait=False)["execution_id"] for _ in range(BURST)]
        asked = time.monotonic()
        waiting = quiet.execute(wait=False)["execution_id"]
        time.sleep(max(0.0, asked + max(timings.values()) + 2.0 - time.monotonic()))
        assert quiet.run(waiting)["status"] == "queued"  # by now it had finished under strict isolation
        noisy_runs = noisy.settle(burst)
        quiet_run = quiet.settle([waiting], cancel=False)[0]
        started = [run for run in noisy_runs if run["started_at"]]
        assert _most_at_once(started) == 2  # uncapped, noisy filled the pool
        assert quiet_run["status"] == "completed"
        ahead = [run for run in started if _moment(run["started_at"]) < _moment(quiet_run["started_at"])]
        assert len(ahead) >= 4, f"only {len(ahead)} of noisy's runs went before quiet's"
        timings["standard"] = _moment(quiet_run["finished_at"]) - _moment(quiet_run["created_at"])
        (tmp_path / "timings.txt").write_text(repr({**timings, "ahead of quiet (standard)": len(ahead)}))
    finally:
        installation.stop()
        if pool is not None and pool.poll() is None:
            os.killpg(pool.pid, signal.SIGTERM)
            try:
                pool.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(pool.pid, signal.SIGKILL)
        log.close()
        installation.drop()
