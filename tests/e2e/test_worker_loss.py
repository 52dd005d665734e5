"""A Celery worker killed in the middle of a run: the run is neither lost nor run twice to completion."""

import json
import os
import signal
import subprocess
import time

import pytest

from tests.e2e.conftest import REPO, Installation, http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _worker(installation: Installation, name: str, log) -> subprocess.Popen:
    env = {**installation.env, "NEXUS_CELERY_VISIBILITY_TIMEOUT": "3", "NEXUS_CELERY_RESTORE_INTERVAL": "1"}
    return subprocess.Popen(
        [
            str(REPO / ".venv/bin/celery"),
            "-A",
            "nexus_site",
            "worker",
            "-P",
            "solo",
            "-Q",
            "nexus",
            f"--hostname={name}@%h",
            "--loglevel=INFO",
        ],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _run(installation: Installation, run_id: str) -> dict:
    status, run = http("GET", f"{installation.base_url}/api/v1/executions/{run_id}/", key=installation.credentials["api_key"])
    assert status == 200, run
    return run


def _wait_status(installation: Installation, run_id: str, wanted: set[str], timeout: float) -> dict:
    """Poll the REST API (a request costs milliseconds; a CLI process, a Django start-up)."""
    deadline = time.monotonic() + timeout
    run = {}
    while time.monotonic() < deadline:
        run = _run(installation, run_id)
        if run["status"] in wanted:
            return run
        time.sleep(0.1)
    raise AssertionError(f"run stayed {run.get('status')} (wanted {wanted})")


def test_a_killed_worker_does_not_lose_the_run(tmp_path):
    installation = Installation(tmp_path, redis_db=6)
    log = open(tmp_path / "workers.log", "wb")  # noqa: SIM115
    workers: list[subprocess.Popen] = []
    try:
        installation.database_from_template()  # migrated: the worker can start before `nexus up` bootstraps
        workers.append(_worker(installation, "first", log))
        installation.start("--only", "proxy,web")  # the API to poll; the workers are the test's own
        definition = {
            "nodes": [
                {"id": "wait", "type": "delay", "config": {"seconds": 3}},
                {"id": "done", "type": "template", "config": {"template": "finished"}},
            ],
            "edges": [{"from": "wait", "to": "done"}],
            "outputs": {"result": "nodes.done"},
        }
        (tmp_path / "slow.json").write_text(json.dumps(definition))
        installation.cli_json("workflow", "create", "slow", f"--file={tmp_path / 'slow.json'}")
        installation.cli_json("deploy", "slow")

        started = installation.cli_json("run", "slow", "--no-wait")
        assert started["status"] == "queued"
        _wait_status(installation, started["execution_id"], {"running"}, timeout=30)

        os.killpg(workers[0].pid, signal.SIGKILL)  # mid-run: the delay node is sleeping
        workers[0].wait(timeout=10)
        assert _run(installation, started["execution_id"])["status"] == "running"

        workers.append(_worker(installation, "second", log))
        run = _wait_status(installation, started["execution_id"], {"completed", "failed", "timed_out"}, timeout=60)
        assert run["status"] == "completed" and run["outputs"] == {"result": "finished"}
        assert run["attempt"] == 2
        assert [step["node"] for step in run["steps"]] == ["wait", "done"]
        assert installation.cli_json("history", "--workflow=slow")["count"] == 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                worker.wait(timeout=15)
        log.close()
        installation.stop()
        installation.drop()
