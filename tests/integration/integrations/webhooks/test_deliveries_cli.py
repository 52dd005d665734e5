"""`nexus app deliveries|redeliver`: a table or one JSON document, errors on stderr with an exit code."""

import json

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.events.services import publish
from apps.integrations.delivery import delivery_attempt
from apps.integrations.models import WebhookDelivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def app_with_deliveries(webhook_queue, make_app, receiver, nexus_world):
    app = make_app(receiver.url)
    connection.set_tenant(nexus_world["tenants"]["acme"])
    publish(type="execution.completed", source="api", data={})
    publish(type="data.processed", source="api", data={})
    first = WebhookDelivery.objects.get(application=app, event_type="execution.completed")
    assert delivery_attempt(delivery_id=first.id).outcome == "delivered"
    connection.set_schema_to_public()
    return app


def test_deliveries_as_one_json_document_and_as_a_table(nexus, app_with_deliveries, monkeypatch):
    monkeypatch.setenv("COLUMNS", "220")  # a wide terminal: the table is not cut
    app = app_with_deliveries
    code, out, err = nexus("--tenant", "acme", "app", "deliveries", app.id, "--json")
    assert code == 0, err
    deliveries = json.loads(out)["deliveries"]
    assert [(d["event_type"], d["status"], d["attempts"]) for d in deliveries] == [
        ("data.processed", "pending", 0),
        ("execution.completed", "delivered", 1),
    ]
    code, out, err = nexus("--tenant", "acme", "app", "deliveries", app.id, "--status", "delivered", "--json")
    assert [d["event_type"] for d in json.loads(out)["deliveries"]] == ["execution.completed"]
    code, out, err = nexus("--tenant", "acme", "app", "deliveries", app.id, "--limit", "1")
    assert code == 0, err
    assert f"webhook deliveries of {app.id}" in out and "data.processed" in out and "execution.completed" not in out


def test_redeliver_from_the_command_line(nexus, app_with_deliveries, webhook_queue, receiver, django_capture_on_commit_callbacks):
    app = app_with_deliveries
    delivered = WebhookDelivery.objects.get(application=app, event_type="execution.completed")
    with django_capture_on_commit_callbacks(execute=True):
        code, out, err = nexus("--tenant", "acme", "app", "redeliver", app.id, delivered.id, "--json")
    assert code == 0, err
    body = json.loads(out)
    assert (body["id"], body["status"], body["attempts"]) == (delivered.id, "pending", 0)
    [audit] = AuditEvent.objects.filter(action="webhook.redelivered", target=delivered.id)
    assert (audit.channel, audit.details["previous_status"]) == ("cli", "delivered")
    # the message sent once the CLI's transaction committed: the worker loop picks it up
    webhook_queue.drain(lambda: WebhookDelivery.objects.get(id=delivered.id).status == "delivered")
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [delivered.id, delivered.id]


def test_errors_go_to_stderr_with_an_exit_code(nexus, app_with_deliveries):
    app = app_with_deliveries
    code, out, err = nexus("--tenant", "globex", "app", "deliveries", app.id)
    assert (code, out) == (3, "")
    assert f"application '{app.id}' does not exist (application_not_found)" in err
    code, out, err = nexus("--tenant", "acme", "app", "deliveries", app.id, "--limit", "0", "--json")
    assert (code, out) == (2, "")
    assert json.loads(err)["error"]["fields"] == {"limit": "an integer from 1 to 500"}
    code, out, err = nexus("--tenant", "acme", "app", "redeliver", app.id, "whd_00000000000000000000000000")
    assert (code, out) == (3, "")
    assert "delivery_not_found" in err
