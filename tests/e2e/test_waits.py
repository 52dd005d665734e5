"""Waiting callers cannot take every web thread: through a real `nexus up`, past NEXUS_WAIT_MAX_PER_TENANT (2 in
the shared installation) a waiting execute gets 202 and the run id at once, the REST API keeps answering,
and the run still finishes on the worker."""

import threading
import time

import pytest

from tests.e2e.conftest import http

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SLOW = {
    "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 3}}],
    "outputs": {"waited": "nodes.wait"},
}
CAP = 2


def test_waits_past_the_tenant_cap_get_202_at_once_and_the_api_keeps_answering(nexus):
    key = nexus.credentials["api_key"]
    api = f"{nexus.base_url}/api/v1"
    status, body = http("POST", f"{api}/workflows/", {"slug": "slow-wait", "definition": SLOW}, key=key)
    assert status == 201, body
    assert http("POST", f"{api}/workflows/slow-wait/deploy/", {}, key=key)[0] == 200

    # when CAP + 1 callers wait on the slow workflow at once
    answers: list[tuple[float, int, dict]] = []

    def execute() -> None:
        started = time.monotonic()
        status, body = http("POST", f"{api}/workflows/slow-wait/execute/", {"inputs": {}, "wait": True}, key=key, timeout=60)
        answers.append((time.monotonic() - started, status, body))

    callers = [threading.Thread(target=execute) for _ in range(CAP + 1)]
    for caller in callers:
        caller.start()
    time.sleep(1.0)  # every caller is in: CAP of them wait, the other has its answer
    listed_started = time.monotonic()
    listed_status, listed = http("GET", f"{api}/workflows/", key=key, timeout=10)
    listed_s = time.monotonic() - listed_started
    for caller in callers:
        caller.join(timeout=60)

    # then the REST API answered at once while they waited
    assert listed_status == 200 and "slow-wait" in {w["slug"] for w in listed["results"]}
    assert listed_s < 1.0, listed_s
    # and exactly one caller was not kept waiting: 202 at once, the run queued, and why
    capped = [(elapsed, body) for elapsed, status, body in answers if status == 202]
    waited = [(elapsed, body) for elapsed, status, body in answers if status == 200]
    assert len(answers) == CAP + 1 and len(capped) == 1 and len(waited) == CAP, answers
    elapsed, body = capped[0]
    assert elapsed < 1.0, elapsed
    assert body["wait"] == "capped" and body["status"] in ("queued", "running") and body["result"] is None
    for elapsed, body in waited:
        assert body["status"] == "completed" and "wait" not in body and elapsed >= 3.0
    # and the capped run goes on to finish on the worker, like any run whose wait ran out
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status, run = http("GET", f"{api}/executions/{capped[0][1]['execution_id']}/", key=key)
        if run["status"] == "completed":
            break
        time.sleep(0.25)
    assert status == 200 and run["status"] == "completed"
