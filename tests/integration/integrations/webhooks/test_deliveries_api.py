"""GET /api/v1/apps/{id}/deliveries/, one delivery with its payload, and redelivery by hand; who may see them."""

import threading

import pytest
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied
from apps.core.locks import delivery_lock_key
from apps.core.principal import Principal
from apps.events.services import publish
from apps.integrations.delivery import delivery_attempt
from apps.integrations.models import WebhookDelivery
from apps.integrations.selectors import delivery_list
from tests.integration.integrations.webhooks.conftest import secret_of

pytestmark = pytest.mark.django_db

FIELDS = {
    "id",
    "application",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "response_code",
    "latency_ms",
    "last_error",
    "next_attempt_at",
    "created_at",
    "delivered_at",
}


@pytest.fixture
def hooked(webhook_queue, make_app, receiver, nexus_world):
    """An acme application with three deliveries: execution.completed delivered, execution.failed failed after a
    500, data.processed pending."""
    app = make_app(receiver.url)
    connection.set_tenant(nexus_world["tenants"]["acme"])
    events = [publish(type=t, source="api", data={}) for t in ("execution.completed", "execution.failed", "data.processed")]
    by_type = {d.event_type: d for d in WebhookDelivery.objects.filter(application=app)}
    assert delivery_attempt(delivery_id=by_type["execution.completed"].id).outcome == "delivered"
    receiver.script = [500]
    WebhookDelivery.objects.filter(id=by_type["execution.failed"].id).update(attempts=14)  # its last attempt next
    assert delivery_attempt(delivery_id=by_type["execution.failed"].id).outcome == "failed"
    connection.set_schema_to_public()
    return {"app": app, "events": events, "deliveries": by_type}


def _state(delivery_id: str) -> tuple:
    return WebhookDelivery.objects.values_list("status", "attempts", "last_error").get(id=delivery_id)


def test_an_admin_lists_an_applications_deliveries_newest_first(api, hooked):
    app, by_type = hooked["app"], hooked["deliveries"]
    response = api().get(f"/api/v1/apps/{app.id}/deliveries/")
    assert response.status_code == 200, response.json()
    deliveries = response.json()["deliveries"]
    assert [d["event_type"] for d in deliveries] == ["data.processed", "execution.failed", "execution.completed"]
    assert all(set(d) == FIELDS for d in deliveries)
    pending, failed, delivered = deliveries
    assert (delivered["status"], delivered["attempts"], delivered["response_code"], delivered["last_error"]) == (
        "delivered",
        1,
        200,
        "",
    )
    assert delivered["latency_ms"] > 0 and delivered["delivered_at"].endswith("Z") and delivered["next_attempt_at"] is None
    assert (failed["status"], failed["attempts"], failed["response_code"]) == ("failed", 15, 500)
    assert failed["last_error"] == "HTTP 500: receiver says no (gave up after 15 attempts)"
    assert (pending["status"], pending["attempts"], pending["application"], pending["id"]) == (
        "pending",
        0,
        app.id,
        by_type["data.processed"].id,
    )
    assert pending["next_attempt_at"].endswith("Z")


def test_deliveries_filter_by_status_event_type_and_limit(api, hooked):
    app = hooked["app"]
    owner = api()
    assert [d["event_type"] for d in owner.get(f"/api/v1/apps/{app.id}/deliveries/", status="failed").json()["deliveries"]] == [
        "execution.failed"
    ]
    by_entity = owner.get(f"/api/v1/apps/{app.id}/deliveries/", event_type="execution.*").json()["deliveries"]
    assert [d["event_type"] for d in by_entity] == ["execution.failed", "execution.completed"]
    exact = owner.get(f"/api/v1/apps/{app.id}/deliveries/", event_type="data.processed").json()["deliveries"]
    assert [d["event_type"] for d in exact] == ["data.processed"]
    assert len(owner.get(f"/api/v1/apps/{app.id}/deliveries/", limit=1).json()["deliveries"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"event_type": "Bad Type"}, "event_type"),
    ],
)
def test_a_bad_filter_is_a_400_naming_the_field(api, hooked, params, field):
    response = api().get(f"/api/v1/apps/{hooked['app'].id}/deliveries/", **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and list(body["fields"]) == [field]


def test_one_delivery_with_its_payload(api, hooked):
    app, delivery = hooked["app"], hooked["deliveries"]["execution.completed"]
    response = api().get(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == FIELDS | {"payload"}
    assert body["payload"] == hooked["events"][0]
    missing = api().get(f"/api/v1/apps/{app.id}/deliveries/whd_00000000000000000000000000/")
    assert (missing.status_code, missing.json()["code"]) == (404, "delivery_not_found")


def test_ids_that_cannot_exist_are_a_404(api, hooked):
    app = hooked["app"]
    owner = api()
    for response, code in (
        (owner.get("/api/v1/apps/app_x/deliveries/"), "application_not_found"),
        (owner.get(f"/api/v1/apps/{app.id}/deliveries/whd_{'x' * 300}/"), "delivery_not_found"),
        (owner.post(f"/api/v1/apps/{app.id}/deliveries/whd_/redeliver/"), "delivery_not_found"),
    ):
        assert (response.status_code, response.json()["code"]) == (404, code)
    # A NUL character is refused before any lookup (apps/tenants/middleware.py).
    nul = owner.get(f"/api/v1/apps/{app.id}/deliveries/whd%00x/")
    assert (nul.status_code, nul.json()["code"]) == (400, "invalid_characters")


def test_redelivery_by_hand_sends_a_failed_delivery_again(
    api, hooked, webhook_queue, receiver, django_capture_on_commit_callbacks
):
    app, failed = hooked["app"], hooked["deliveries"]["execution.failed"]
    sent_before = len(receiver.requests)
    with django_capture_on_commit_callbacks(execute=True):
        response = api().post(f"/api/v1/apps/{app.id}/deliveries/{failed.id}/redeliver/")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert (body["id"], body["status"], body["attempts"], body["last_error"], body["response_code"]) == (
        failed.id,
        "pending",
        0,
        "",
        None,
    )
    [audit] = AuditEvent.objects.filter(action="webhook.redelivered", target=failed.id)
    assert audit.details == {
        "application": app.id,
        "event_id": failed.event_id,
        "event_type": "execution.failed",
        "previous_status": "failed",
        "previous_attempts": 15,
    }
    assert audit.tenant_id == app.tenant_id
    webhook_queue.drain(lambda: _state(failed.id)[0] == "delivered")
    assert _state(failed.id) == ("delivered", 1, "")
    resent = receiver.requests[sent_before:]
    assert [r["headers"]["webhook-id"] for r in resent] == [failed.id]
    assert Webhook(secret_of(app)).verify(resent[0]["body"], resent[0]["headers"])["id"] == failed.event_id


def test_another_tenants_application_does_not_exist(api, hooked):
    app, delivery = hooked["app"], hooked["deliveries"]["execution.failed"]
    globex = api("globex")
    for response in (
        globex.get(f"/api/v1/apps/{app.id}/deliveries/"),
        globex.get(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/"),
        globex.post(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/redeliver/"),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "application_not_found")
    assert _state(delivery.id)[0] == "failed"
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()


def test_a_viewer_or_operator_may_not_see_or_redeliver(api, hooked):
    app, delivery = hooked["app"], hooked["deliveries"]["execution.failed"]
    for role in ("viewer", "operator"):
        client = api("acme", role)
        assert client.get(f"/api/v1/apps/{app.id}/deliveries/").status_code == 403
        response = client.post(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/redeliver/")
        assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert _state(delivery.id)[0] == "failed"
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()


def test_an_application_sees_its_own_deliveries_and_no_other(hooked, make_app, acme):
    app = hooked["app"]
    other = make_app("http://127.0.0.1:9/other")
    itself = Principal(
        kind="api_key", actor="apikey:key_app", tenant_id=acme.pk, tenant_slug="acme", role="operator", application_id=app.id
    )
    assert len(delivery_list(principal=itself, tenant_id=acme.pk, app_id=app.id)) == 3
    with pytest.raises(PermissionDenied):
        delivery_list(principal=itself, tenant_id=acme.pk, app_id=other.id)


def test_listing_costs_the_same_queries_for_any_number_of_deliveries(hooked, owner, acme, django_assert_num_queries):
    app = hooked["app"]
    connection.set_tenant(acme)
    for _ in range(10):
        publish(type="execution.completed", source="api", data={})
    with django_assert_num_queries(2):  # the application, its deliveries
        assert len(delivery_list(principal=owner, tenant_id=acme.pk, app_id=app.id)) == 13


def test_a_delivery_in_flight_or_of_a_revoked_application_is_not_redelivered(api, hooked):
    app, delivery = hooked["app"], hooked["deliveries"]["execution.failed"]
    held, release = threading.Event(), threading.Event()

    def hold_the_lock():  # an attempt sending right now, on a worker's connection
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_lock(%s)", [delivery_lock_key(delivery.id)])
                held.set()
                release.wait(10)
                cursor.execute("SELECT pg_advisory_unlock(%s)", [delivery_lock_key(delivery.id)])
        finally:
            connection.close()

    worker = threading.Thread(target=hold_the_lock)
    worker.start()
    try:
        assert held.wait(10)
        response = api().post(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/redeliver/")
        assert (response.status_code, response.json()["code"]) == (409, "delivery_in_flight")
    finally:
        release.set()
        worker.join(10)
    assert _state(delivery.id)[0] == "failed"
    app.revoked_at = timezone.now()
    app.save(update_fields=["revoked_at"])
    response = api().post(f"/api/v1/apps/{app.id}/deliveries/{delivery.id}/redeliver/")
    assert (response.status_code, response.json()["code"]) == (409, "application_revoked")
    assert _state(delivery.id)[0] == "failed"
    assert not AuditEvent.objects.filter(action="webhook.redelivered").exists()


def test_an_application_registered_through_the_api_gets_signed_runs_and_sees_its_own_deliveries(
    api, register, webhook_queue, receiver, django_capture_on_commit_callbacks
):
    owner = api()
    assert owner.post("/api/v1/workflows/", {"slug": "hooked-hello", "template": "basic"}).status_code == 201
    assert owner.post("/api/v1/workflows/hooked-hello/deploy/", {}).status_code == 200
    app = register(webhook_url=receiver.url, webhook_events=["execution.completed"])
    with django_capture_on_commit_callbacks(execute=True):
        run = owner.post("/api/v1/workflows/hooked-hello/execute/", {"inputs": {"name": "Hook"}}).json()
    webhook_queue.drain(lambda: len(receiver.requests) == 1)
    [payload] = receiver.verified(app["webhook_secret"])  # the secret shown at registration verifies it
    assert (payload["type"], payload["data"]["execution_id"], payload["tenant"]) == (
        "execution.completed",
        run["execution_id"],
        "acme",
    )
    itself = api(key=app["api_key"])
    deliveries = itself.get(f"/api/v1/apps/{app['id']}/deliveries/").json()["deliveries"]
    assert [(d["event_id"], d["status"], d["attempts"]) for d in deliveries] == [(payload["id"], "delivered", 1)]
    # a run whose delivery is still pending when the application is revoked: it fails, unsent
    owner.post("/api/v1/workflows/hooked-hello/execute/", {"inputs": {"name": "Late"}})
    assert owner.post(f"/api/v1/apps/{app['id']}/revoke/").status_code == 200
    latest = owner.get(f"/api/v1/apps/{app['id']}/deliveries/", limit=1).json()["deliveries"][0]
    assert (latest["status"], latest["attempts"], latest["last_error"]) == (
        "failed",
        0,
        "not sent: the application was revoked",
    )
    assert len(receiver.requests) == 1
