"""An external system integrating unattended, through real processes (HAProxy, granian, daphne, Celery, beat):
it registers an application, authenticates with its API key and with OAuth2, bursts past its rate limit and
recovers by waiting `Retry-After` (through the Python client in clients/python), and receives every run's
event as a signed Standard Webhooks delivery — including the ones sent while its receiver was down."""

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from nexus_client import ClientCredentials, NexusClient, RateLimitError
from standardwebhooks import Webhook

from tests.e2e.conftest import CACHE_WAIT_S, free_port_block

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BURST = 150


class Receiver:
    """A webhook endpoint on loopback that verifies every signature; it can go down and come back on its port."""

    def __init__(self):
        self.port = free_port_block(1)
        self.url = f"http://127.0.0.1:{self.port}/hooks/nexus"
        self.secret: str | None = None
        self.events: dict[str, dict] = {}  # event id -> payload
        self.delivery_ids: list[str] = []
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    payload = Webhook(receiver.secret).verify(body, headers)
                except Exception:
                    with receiver.lock:
                        receiver.bad_signatures += 1
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver.lock:
                    receiver.events[payload["id"]] = payload
                    receiver.delivery_ids.append(headers["webhook-id"])
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def executions(self) -> set[str]:
        with self.lock:
            return {e["data"]["execution_id"] for e in self.events.values() if e["type"] == "execution.completed"}


def wait_for(predicate, timeout: float, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.start()
    yield receiver
    with contextlib.suppress(Exception):
        receiver.stop()


def test_an_application_bursts_past_its_limit_and_receives_every_run_as_a_signed_webhook(nexus, receiver):
    owner = NexusClient(nexus.base_url, api_key=nexus.credentials["api_key"])
    created = nexus.cli("create", "workflow", "integration-hello", "--template=basic", "--json")
    assert created.returncode == 0 or "already exists" in created.stderr, created.stderr
    owner.workflows.deploy("integration-hello")

    # Register: the secrets come once, and never again.
    app = owner.apps.register("billing-sync", webhook_url=receiver.url, webhook_events=["execution.completed"])
    assert app.id.startswith("app_") and app.api_key.startswith("nxk_") and app.client_id and app.client_secret
    assert app.webhook_secret.startswith("whsec_")
    shown = owner.apps.get(app.id).raw
    assert not {"api_key", "client_secret", "webhook_secret"} & {k for k, v in shown.items() if v}
    receiver.secret = app.webhook_secret
    # Each process re-reads a tenant's webhook subscriptions at most every NEXUS_AUTH_CACHE_S, like keys.
    time.sleep(CACHE_WAIT_S)

    # Health and an authenticated read with the API key, then with an OAuth2 client-credentials token.
    by_key = NexusClient(nexus.base_url, api_key=app.api_key)
    by_oauth = NexusClient(nexus.base_url, oauth=ClientCredentials(app.client_id, app.client_secret))
    for client in (by_key, by_oauth):
        assert client.health().healthy
        assert "integration-hello" in [w.slug for w in client.workflows.list()]

    # 150 executions in a burst: the application's default limit refuses some; each refusal says exactly how
    # long to wait, and the same call succeeds once that time has passed.
    results, refusals = [], []
    started = time.monotonic()
    for n in range(BURST):
        try:
            result = by_key.workflows.execute("integration-hello", {"name": f"n{n}"})
        except RateLimitError as limited:
            # A refusal is one allowed outcome of each call, not the only one.
            assert limited.retry_after is not None and 0 < limited.retry_after <= 60, limited  # noqa: PT017
            refusals.append(limited)
            time.sleep(limited.retry_after)
            result = by_key.workflows.execute("integration-hello", {"name": f"n{n}"})  # waiting is enough
        results.append(result)
        assert time.monotonic() - started < 180
    assert refusals, "a burst of 150 calls must exceed a new application's limit"
    assert all(r.limit and r.limit < BURST for r in refusals)
    assert [r.status for r in results] == ["completed"] * BURST
    assert [r.result for r in results[:2]] == [{"message": "Hello, n0!"}, {"message": "Hello, n1!"}]
    run_ids = {r.execution_id for r in results}
    assert len(run_ids) == BURST

    # Every run's completion reached the receiver, signed; the latest deliveries are recorded as delivered.
    ordered = [r.execution_id for r in results]
    assert wait_for(lambda: run_ids <= receiver.executions(), timeout=60), [
        n for n, run_id in enumerate(ordered) if run_id not in receiver.executions()
    ]
    assert receiver.bad_signatures == 0 and len(receiver.delivery_ids) >= BURST
    assert all(d.startswith("whd_") for d in receiver.delivery_ids)
    latest = wait_for(
        lambda: (d := owner.apps.deliveries(app.id, limit=20)) and all(x.status == "delivered" for x in d) and d,
        timeout=30,
    )
    assert latest and all(d.event_type == "execution.completed" and d.response_code == 204 for d in latest)

    # The receiver goes down: runs go on, their deliveries fail and wait; once it is back, none is missing.
    receiver.stop()
    missed = {owner.workflows.execute("integration-hello", {"name": f"down{n}"}).execution_id for n in range(5)}
    retrying = wait_for(
        lambda: len(d := [x for x in owner.apps.deliveries(app.id, limit=5) if x.attempts >= 1 and x.last_error]) == 5 and d,
        timeout=30,
    )
    assert retrying and all(d.status == "pending" for d in retrying), [d.raw for d in owner.apps.deliveries(app.id, limit=5)]
    assert not missed & receiver.executions()
    receiver.start()
    assert wait_for(lambda: missed <= receiver.executions(), timeout=60), missed - receiver.executions()
    final = wait_for(
        lambda: (d := owner.apps.deliveries(app.id, limit=5)) and all(x.status == "delivered" for x in d) and d, timeout=30
    )
    assert final and all(d.attempts >= 2 for d in final)
    assert receiver.bad_signatures == 0
    with receiver.lock:
        assert len(set(receiver.delivery_ids)) == len(receiver.delivery_ids)  # no delivery was sent twice
        kinds = {(e["type"], e["tenant"], e["source"]) for e in receiver.events.values()}
    assert kinds == {("execution.completed", "default", "api")}
