"""Outbound webhooks against a real receiver on loopback: dispatch, signatures, retries, SSRF, sweep, concurrency."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.events.models import Event
from apps.events.services import publish
from apps.integrations.delivery import deliveries_sweep, delivery_attempt, webhook_deliveries_fail
from apps.integrations.models import WebhookDelivery
from apps.integrations.subscriptions import event_type_matches
from apps.ops.metrics import counter_key
from apps.ops.redis_client import redis_client
from tests.integration.integrations.webhooks.conftest import secret_of

pytestmark = pytest.mark.django_db


def _publish(tenant, type: str = "execution.completed", **data) -> dict:
    connection.set_tenant(tenant)
    return publish(type=type, source="api", data=data or {"n": 1})


def _deliveries(**filters) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(**filters).order_by("created_at", "id"))


def _all_settled():
    return lambda: not WebhookDelivery.objects.filter(status="pending").exists()


def test_event_type_matching():
    assert event_type_matches(["*"], "execution.completed")
    assert event_type_matches(["execution.*"], "execution.completed")
    assert event_type_matches(["execution.completed"], "execution.completed")
    assert not event_type_matches(["execution.failed", "data.*"], "execution.completed")
    assert not event_type_matches([], "execution.completed")
    assert event_type_matches(["execution.failed"], "execution.*")
    assert not event_type_matches(["executions.failed", "data.processed"], "execution.*")


def test_deliveries_are_created_for_the_live_subscribed_applications_only(
    webhook_queue, make_app, nexus_world, django_capture_on_commit_callbacks
):
    url = "http://127.0.0.1:9/hooks"
    wanted = [
        make_app(url, ["*"]),
        make_app(url, ["execution.*"]),
        make_app(url, ["execution.completed", "data.processed"]),
    ]
    make_app(url, ["execution.failed"])
    make_app(url, ["data.*"])
    make_app(url, [])
    make_app("", ["*"])  # no URL: nothing to send to
    make_app(url, ["*"], revoked_at=timezone.now())
    make_app(url, ["*"], tenant="globex")
    with django_capture_on_commit_callbacks(execute=True):
        event = _publish(nexus_world["tenants"]["acme"], run="r1")
    deliveries = _deliveries()
    assert sorted(d.application_id for d in deliveries) == sorted(app.id for app in wanted)
    for delivery in deliveries:
        assert (delivery.event_id, delivery.event_type, delivery.status, delivery.attempts) == (
            event["id"],
            "execution.completed",
            "pending",
            0,
        )
        assert delivery.tenant_id == nexus_world["tenants"]["acme"].pk
        assert delivery.payload == event
        assert delivery.id.startswith("whd_")
    # one message per delivery, on the webhooks queue, in the public schema
    messages = webhook_queue.fetch()
    assert sorted(m.decode()[0][0] for m in messages) == sorted(d.id for d in deliveries)
    assert {(m.headers["task"], m.headers["_schema_name"]) for m in messages} == {("integrations.deliver", "public")}


def test_an_event_without_subscribers_writes_nothing(webhook_queue, make_app, nexus_world, django_assert_num_queries):
    make_app("http://127.0.0.1:9/hooks", ["data.*"])
    _publish(nexus_world["tenants"]["acme"])  # fills the subscription cache
    with django_assert_num_queries(1):  # the event's own INSERT: the subscriptions come from the cache
        publish(type="execution.completed", source="api", data={})
    assert _deliveries() == []


def test_a_delivery_is_signed_sent_and_recorded(
    webhook_queue, make_app, receiver, nexus_world, django_capture_on_commit_callbacks
):
    app = make_app(receiver.url, ["execution.*"])
    redis_client().delete(counter_key("webhook_deliveries"))
    with django_capture_on_commit_callbacks(execute=True):
        events = [_publish(nexus_world["tenants"]["acme"], n=n) for n in range(3)]
    webhook_queue.drain(_all_settled())
    deliveries = _deliveries()
    assert [d.status for d in deliveries] == ["delivered"] * 3
    for delivery in deliveries:
        assert (delivery.attempts, delivery.response_code, delivery.last_error, delivery.next_attempt_at) == (1, 200, "", None)
        assert delivery.latency_ms is not None and 0 < delivery.latency_ms < 5000
        assert delivery.delivered_at is not None
    # The receiver verifies every signature and gets the events in the DESIGN §8 shape.
    payloads = receiver.verified(secret_of(app))
    assert sorted(p["id"] for p in payloads) == sorted(e["id"] for e in events)
    for payload in payloads:
        assert set(payload) == {"id", "type", "source", "tenant", "session", "ts", "data"}
        assert (payload["type"], payload["source"], payload["tenant"], payload["session"]) == (
            "execution.completed",
            "api",
            "acme",
            None,
        )
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {d.id for d in deliveries}
    assert {r["path"] for r in receiver.requests} == {"/hooks"}
    assert int(redis_client().hget(counter_key("webhook_deliveries"), "delivered")) == 3


def test_a_receiver_error_is_retried_with_backoff_then_delivered(
    webhook_queue, make_app, receiver, nexus_world, django_capture_on_commit_callbacks
):
    app = make_app(receiver.url)
    receiver.script = [500]
    with django_capture_on_commit_callbacks(execute=True):
        _publish(nexus_world["tenants"]["acme"])
    [delivery] = _deliveries()
    webhook_queue.drain(lambda: len(receiver.requests) == 1)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("pending", 1, 500)
    assert delivery.last_error == "HTTP 500: receiver says no"
    assert delivery.next_attempt_at is not None and delivery.next_attempt_at <= timezone.now() + timedelta(seconds=0.2)
    # the retry is a message with a countdown to the delivery's next attempt
    [retry] = webhook_queue.fetch()
    assert retry.decode()[0] == [delivery.id]
    assert abs((webhook_queue.eta(retry) - delivery.next_attempt_at).total_seconds()) < 0.05
    webhook_queue.drain(_all_settled())
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.last_error) == ("delivered", 2, 200, "")
    # the same webhook-id on both attempts, each signed
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivery.id, delivery.id]
    assert len(receiver.verified(secret_of(app))) == 2


def test_a_delivery_fails_after_the_last_attempt(webhook_queue, make_app, receiver, nexus_world, settings):
    settings.NEXUS_WEBHOOK_MAX_ATTEMPTS = 3
    make_app(receiver.url)
    receiver.script = [503, 500, 302, 200]  # a redirect is not followed: it is a failed attempt
    _publish(nexus_world["tenants"]["acme"])
    [delivery] = _deliveries()
    assert delivery_attempt(delivery_id=delivery.id).outcome == "retrying"
    webhook_queue.drain(_all_settled())
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code, delivery.next_attempt_at) == ("failed", 3, 302, None)
    assert delivery.last_error == "HTTP 302: receiver says no (gave up after 3 attempts)"
    assert len(receiver.requests) == 3
    assert delivery_attempt(delivery_id=delivery.id).outcome == "skipped"  # a late copy of the message
    assert len(receiver.requests) == 3


def test_a_slow_receiver_times_out_and_is_retried(webhook_queue, make_app, receiver, nexus_world, settings):
    settings.NEXUS_WEBHOOK_TIMEOUT_S = 0.3
    make_app(receiver.url)
    receiver.delay_s = 1.0
    _publish(nexus_world["tenants"]["acme"])
    [delivery] = _deliveries()
    result = delivery_attempt(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert (result.outcome, delivery.status, delivery.attempts, delivery.response_code) == ("retrying", "pending", 1, None)
    assert delivery.last_error == "no answer from 127.0.0.1 within 0.3 s"
    receiver.delay_s = 0
    webhook_queue.drain(_all_settled())
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)


def test_a_receiver_down_for_a_while_gets_every_missed_event(
    webhook_queue, make_app, receiver, nexus_world, django_capture_on_commit_callbacks
):
    app = make_app(receiver.url)
    receiver.stop()  # the port is closed: connection refused
    with django_capture_on_commit_callbacks(execute=True):
        events = [_publish(nexus_world["tenants"]["acme"], n=n) for n in range(5)]
    webhook_queue.drain(lambda: all(d.attempts >= 3 for d in _deliveries()), timeout=15)
    pending = _deliveries()
    assert {d.status for d in pending} == {"pending"}
    assert all(d.last_error.startswith(f"cannot connect to 127.0.0.1:{receiver.port}") for d in pending)
    receiver.start()  # back, on the same port
    webhook_queue.drain(_all_settled(), timeout=15)
    assert {d.status for d in _deliveries()} == {"delivered"}
    assert sorted(p["id"] for p in receiver.verified(secret_of(app))) == sorted(e["id"] for e in events)


def test_ssrf_a_loopback_receiver_is_refused_at_send_time(webhook_queue, make_app, receiver, nexus_world, settings):
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = False
    make_app(receiver.url)
    _publish(nexus_world["tenants"]["acme"])
    [delivery] = _deliveries()
    result = delivery_attempt(delivery_id=delivery.id)
    delivery.refresh_from_db()
    assert (result.outcome, delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", "failed", 1, None)
    assert delivery.last_error == (
        "refused to send to 127.0.0.1: a loopback address is not allowed for webhooks (NEXUS_WEBHOOK_ALLOW_PRIVATE is off)"
    )
    assert receiver.requests == []
    assert webhook_queue.fetch() == []  # not retried


def test_ssrf_a_name_resolving_to_loopback_is_refused(webhook_queue, make_app, receiver, nexus_world, settings):
    settings.NEXUS_WEBHOOK_ALLOW_PRIVATE = False
    make_app(f"http://localhost:{receiver.port}/hooks")
    _publish(nexus_world["tenants"]["acme"])
    [delivery] = _deliveries()
    assert delivery_attempt(delivery_id=delivery.id).outcome == "failed"
    delivery.refresh_from_db()
    assert delivery.last_error.startswith("refused to send to localhost (")
    assert "loopback address is not allowed" in delivery.last_error
    assert receiver.requests == []


def test_a_revoked_applications_pending_deliveries_fail_unsent(webhook_queue, make_app, receiver, nexus_world):
    app = make_app(receiver.url)
    other = make_app(receiver.url)
    _publish(nexus_world["tenants"]["acme"])
    _publish(nexus_world["tenants"]["acme"])
    app.revoked_at = timezone.now()
    app.save(update_fields=["revoked_at"])
    first, second = _deliveries(application=app)
    assert delivery_attempt(delivery_id=first.id).outcome == "failed"
    first.refresh_from_db()
    assert (first.status, first.last_error) == ("failed", "not sent: the application was revoked")
    assert webhook_deliveries_fail(application_id=app.id, reason="application revoked by test") == 1
    second.refresh_from_db()
    assert (second.status, second.last_error) == ("failed", "application revoked by test")
    assert receiver.requests == []
    assert {d.status for d in _deliveries(application=other)} == {"pending"}


def test_the_sweep_re_enqueues_overdue_deliveries_and_fails_revoked_ones(
    webhook_queue, make_app, receiver, nexus_world, settings
):
    settings.NEXUS_WEBHOOK_SWEEP_GRACE_S = 30
    app = make_app(receiver.url)
    revoked = make_app(receiver.url)
    _publish(nexus_world["tenants"]["acme"])  # no commit: no message was ever sent (a crash after the commit)
    lost = _deliveries(application=app)[0]
    fresh = _publish(nexus_world["tenants"]["acme"])
    long_ago = timezone.now() - timedelta(seconds=60)
    WebhookDelivery.objects.filter(id=lost.id).update(next_attempt_at=long_ago)
    WebhookDelivery.objects.filter(application=revoked).update(next_attempt_at=long_ago)
    revoked.revoked_at = timezone.now()
    revoked.save(update_fields=["revoked_at"])
    assert deliveries_sweep() == {"failed": 2, "requeued": 1}
    lost.refresh_from_db()
    assert lost.status == "pending" and lost.next_attempt_at > long_ago + timedelta(seconds=59)
    assert [m.decode()[0] for m in webhook_queue.fetch()] == [[lost.id]]
    assert deliveries_sweep() == {"failed": 0, "requeued": 0}  # re-armed: not again within the grace
    webhook_queue.drain(lambda: WebhookDelivery.objects.get(id=lost.id).status == "delivered")
    assert [p["id"] for p in receiver.verified(secret_of(app))] == [lost.event_id]
    assert WebhookDelivery.objects.get(application=app, event_id=fresh["id"]).status == "pending"  # not overdue


def test_runs_without_a_session_publish_when_the_tenant_has_webhook_subscriptions(webhook_queue, make_app, owner, acme, receiver):
    from apps.runs.services import run_start
    from apps.workflows.services import workflow_create, workflow_deploy

    app = make_app(receiver.url, ["execution.completed"])
    workflow_create(principal=owner, tenant_id=acme.pk, slug="hooked", template="basic")
    workflow_deploy(principal=owner, tenant_id=acme.pk, ref="hooked")
    run = run_start(principal=owner, tenant_id=acme.pk, workflow_ref="hooked", inputs={"name": "W"}, channel="api")
    assert run.status == "completed" and run.inline
    [delivery] = _deliveries()
    event = Event.objects.get(id=delivery.event_id)
    assert (event.type, event.data["execution_id"]) == ("execution.completed", run.id)
    assert delivery_attempt(delivery_id=delivery.id).outcome == "delivered"
    [payload] = receiver.verified(secret_of(app))
    assert payload["data"]["outputs"] == {"message": "Hello, W!"}


def _in_thread(function, *args):
    """Run `function` on a thread of its own (its own database connection, autocommit); return its result."""
    box: dict = {}

    def target():
        try:
            box["result"] = function(*args)
        except BaseException as error:  # re-raised on the test's thread
            box["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box.get("result")


def test_two_copies_of_a_delivery_message_running_at_once_send_once(webhook_queue, receiver, nexus_world):
    """Committed rows (other connections must see them), removed at the end."""
    import apps.integrations.tasks  # noqa: F401 (registers the tasks)
    from apps.core.ids import new_id
    from apps.integrations.models import Application
    from apps.integrations.secrets import new_salt
    from nexus_site.celery import app as celery_app

    acme = nexus_world["tenants"]["acme"]
    app_id, delivery_id = new_id("app"), new_id("whd")

    def create():
        app = Application.objects.create(
            id=app_id, tenant=acme, name="race", webhook_url=receiver.url, webhook_events=["*"],
            webhook_secret_salt=new_salt(), created_by="test",
        )  # fmt: skip
        event = {"id": new_id("evt"), "type": "execution.completed", "source": "api", "tenant": "acme", "session": None,
                 "ts": "2026-01-01T00:00:00Z", "data": {}}  # fmt: skip
        WebhookDelivery.objects.create(
            id=delivery_id, application=app, tenant_id=acme.pk, event_id=event["id"], event_type=event["type"],
            payload=event, next_attempt_at=timezone.now(),
        )  # fmt: skip
        return app

    app = _in_thread(create)
    receiver.delay_s = 0.5  # a slow receiver keeps the first attempt in flight while the second one starts
    try:
        start = threading.Barrier(2)
        outcomes: list[str] = []

        def run_copy():
            start.wait()
            try:
                result = celery_app.tasks["integrations.deliver"].apply(args=[delivery_id], headers={"_schema_name": "public"})
                outcomes.append(result.get())
            finally:
                connection.close()

        copies = [threading.Thread(target=run_copy) for _ in range(2)]
        for copy in copies:
            copy.start()
        for copy in copies:
            copy.join(30)
        assert sorted(outcomes) == ["delivered", "skipped"]
        assert len(receiver.requests) == 1
        assert receiver.requests[0]["headers"]["webhook-id"] == delivery_id
        state = _in_thread(lambda: WebhookDelivery.objects.values_list("status", "attempts").get(id=delivery_id))
        assert state == ("delivered", 1)
        assert len(receiver.verified(secret_of(app))) == 1
    finally:
        _in_thread(lambda: Application.objects.filter(id=app_id).delete())


def test_an_event_published_on_a_connection_switched_by_schema_name_keeps_its_tenant(webhook_queue, make_app, nexus_world):
    """tenant-schemas-celery restores a schema with set_schema(): no tenant object on the connection."""
    acme = nexus_world["tenants"]["acme"]
    make_app("http://127.0.0.1:9/hooks")
    connection.set_schema(acme.schema_name)
    assert getattr(connection.tenant, "pk", None) is None
    event = publish(type="data.processed", source="worker", data={})
    [delivery] = _deliveries()
    assert (delivery.tenant_id, event["tenant"], delivery.payload["tenant"]) == (acme.pk, "acme", "acme")
