"""Webhook test fixtures: a real HTTP receiver on loopback, the test's own webhooks queue on the real broker
with an in-process worker loop, applications created with the ORM."""

import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook


class Receiver:
    """An HTTP server on 127.0.0.1 that records every request and answers from `script` (statuses in order,
    then 200), after `delay_s`. stop() closes the port; start() opens the same port again."""

    def __init__(self) -> None:
        self.port = 0
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's hook name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    status = receiver.script.pop(0) if receiver.script else 200
                time.sleep(receiver.delay_s)
                answer = b"ok" if status < 300 else b"receiver says no"
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def verified(self, secret: str) -> list[dict]:
        """Every request's payload, checked with the Standard Webhooks verifier (raises if one does not verify)."""
        return [Webhook(secret).verify(r["body"], r["headers"]) for r in self.requests]


class WebhookQueue:
    """The test's own webhooks queue on the real broker, and a worker loop that runs its messages in this
    process through Celery's task machinery (tenant schema switch, audit context) once their countdown is up.
    In the test's transaction, so a worker process could not see the rows."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.held: list = []
        self.ran: list[tuple[str, str]] = []  # (delivery id, outcome)

    def fetch(self) -> list:
        from nexus_site.celery import app as celery_app

        with celery_app.connection_for_read() as conn:
            queue = conn.SimpleQueue(self.name)
            try:
                while True:
                    try:
                        message = queue.get(block=False)
                    except queue.Empty:
                        break
                    message.ack()
                    self.held.append(message)
            finally:
                queue.close()
        return self.held

    @staticmethod
    def eta(message) -> datetime | None:
        eta = message.headers.get("eta")
        return datetime.fromisoformat(eta) if eta else None

    def run_due(self) -> int:
        import apps.integrations.tasks  # noqa: F401 (registers the tasks, as a worker's autodiscovery does)
        from nexus_site.celery import app as celery_app

        self.fetch()
        now = datetime.now(UTC)
        due = [m for m in self.held if self.eta(m) is None or self.eta(m) <= now]
        self.held = [m for m in self.held if m not in due]
        for message in due:
            args, kwargs, _ = message.decode()
            task = celery_app.tasks[message.headers["task"]]
            result = task.apply(args=args, kwargs=kwargs, headers={"_schema_name": message.headers["_schema_name"]})
            self.ran.append((args[0], result.get()))
        return len(due)

    def drain(self, until, timeout: float = 10.0) -> None:
        """Work the queue until `until()` is true; fail after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"not done after {timeout} s; held {len(self.held)} messages, ran {self.ran}")
            if not self.run_due():
                time.sleep(0.02)

    def delete(self) -> None:
        from nexus_site.celery import app as celery_app

        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.delete(self.name, f"_kombu.binding.{self.name}")


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def webhook_queue(settings):
    """Small backoffs, loopback receivers allowed, a queue of the test's own; no cached subscriptions."""
    from apps.integrations.subscriptions import webhook_subscribers_forget

    queue = WebhookQueue(f"webhooks-test-{uuid.uuid4().hex[:12]}")
    settings.NEXUS_WEBHOOK_QUEUE = queue.name
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = True
    settings.NEXUS_WEBHOOK_BACKOFF_BASE_S = 0.05
    settings.NEXUS_WEBHOOK_BACKOFF_MAX_S = 0.2
    settings.NEXUS_WEBHOOK_TIMEOUT_S = 5.0
    webhook_subscribers_forget()
    yield queue
    webhook_subscribers_forget()
    queue.delete()


@pytest.fixture
def make_app(nexus_world):
    """make_app(url, events=["*"], tenant="acme") -> an Application row (until the applications service exists)."""
    from apps.core.ids import new_id
    from apps.integrations.models import Application
    from apps.integrations.secrets import new_salt
    from apps.integrations.subscriptions import webhook_subscribers_forget

    def make(url: str, events=("*",), tenant: str = "acme", name: str = "receiver", **fields) -> Application:
        app = Application.objects.create(
            id=new_id("app"),
            tenant=nexus_world["tenants"][tenant],
            name=name,
            webhook_url=url,
            webhook_events=list(events),
            webhook_secret_salt=new_salt(),
            created_by="test",
            **fields,
        )
        webhook_subscribers_forget()
        return app

    return make


def secret_of(app) -> str:
    from apps.integrations.secrets import webhook_secret

    return webhook_secret(app_id=app.id, salt=app.webhook_secret_salt)
