"""Application scopes narrow webhook delivery: one rule (apps/accounts/access.py `can_read_event`) for which events
a principal may read, applied when an application subscribes and again for every event delivered."""

import pytest
from django.db import connection

from apps.accounts.access import can_read_event, event_read_action, event_read_refusal
from apps.core.principal import Principal
from apps.events.services import publish
from apps.integrations.models import Application, WebhookDelivery

pytestmark = pytest.mark.django_db

EVENT_TYPES = ["execution.completed", "workflow.deployed", "session.created", "member.added", "app.updated", "report.ready"]


def _principal(*, role: str, scopes: frozenset[str] | None = None) -> Principal:
    kind = "application" if scopes is not None else "api_key"
    return Principal(kind=kind, actor="app:test", tenant_id=1, tenant_slug="acme", role=role, scopes=scopes)


def test_each_event_type_needs_the_action_that_reads_its_entity():
    assert [event_read_action(t) for t in EVENT_TYPES] == [
        "execution.read",
        "workflow.read",
        "session.read",
        "member.read",
        "app.read",
        "execution.read",  # a workflow's own event type is data of its run
    ]
    assert event_read_action("member.*") == "member.read"
    assert event_read_action("apikey.revoked") == "apikey.read"


def test_scopes_and_role_decide_which_events_a_principal_reads():
    executions_only = _principal(role="owner", scopes=frozenset({"executions:read"}))
    assert [can_read_event(executions_only, t) for t in EVENT_TYPES] == [True, False, False, False, False, True]
    viewer = _principal(role="viewer")
    assert [can_read_event(viewer, t) for t in EVENT_TYPES] == [True, True, True, True, False, True]
    admin = _principal(role="admin")
    assert all(can_read_event(admin, t) for t in EVENT_TYPES)
    assert event_read_refusal(executions_only, "member.*") == "member.* needs scope members:read"
    assert event_read_refusal(viewer, "app.updated") == "app.updated needs role admin or above (the role is 'viewer')"
    assert event_read_refusal(executions_only, "execution.*") is None


def test_a_star_subscription_receives_only_what_the_scopes_read(
    webhook_queue, make_app, nexus_world, django_capture_on_commit_callbacks
):
    url = "http://127.0.0.1:9/hooks"
    narrow = make_app(url, ["*"], scopes=["executions:read"])
    viewer = make_app(url, ["*"], role="viewer")
    everything = make_app(url, ["*"], role="admin")
    connection.set_tenant(nexus_world["tenants"]["acme"])
    with django_capture_on_commit_callbacks(execute=True):
        published = {t: publish(type=t, source="api", data={})["id"] for t in EVENT_TYPES}

    def received(app) -> list[str]:
        return sorted(d.event_type for d in WebhookDelivery.objects.filter(application=app))

    assert received(narrow) == ["execution.completed", "report.ready"]
    assert received(viewer) == sorted(set(EVENT_TYPES) - {"app.updated"})
    assert received(everything) == sorted(EVENT_TYPES)
    messages = webhook_queue.fetch()
    assert len(messages) == 2 + 5 + 6  # one message per delivery, none for what was filtered out
    assert {d.event_id for d in WebhookDelivery.objects.filter(application=narrow)} == {
        published["execution.completed"],
        published["report.ready"],
    }


def test_scopes_narrowed_after_subscribing_narrow_delivery(
    webhook_queue, make_app, nexus_world, django_capture_on_commit_callbacks
):
    from apps.integrations.subscriptions import webhook_subscribers_forget

    app = make_app("http://127.0.0.1:9/hooks", ["member.*", "execution.*"])
    Application.objects.filter(pk=app.pk).update(scopes=["executions:read"])  # e.g. a row older than the rule
    webhook_subscribers_forget()
    connection.set_tenant(nexus_world["tenants"]["acme"])
    with django_capture_on_commit_callbacks(execute=True):
        publish(type="member.added", source="api", data={})
        publish(type="execution.failed", source="api", data={})
    assert [d.event_type for d in WebhookDelivery.objects.filter(application=app)] == ["execution.failed"]


def test_subscribing_to_events_the_scopes_cannot_read_is_refused_naming_the_field(api):
    body = {
        "name": "narrow",
        "webhook_url": "https://1.1.1.1/hooks",
        "webhook_events": ["execution.*", "member.*", "app.updated"],
        "scopes": ["executions:read"],
    }
    refused = api().post("/api/v1/apps/", body)
    assert refused.status_code == 400
    assert refused.json()["fields"] == {
        "webhook_events": "the application may not read these events: member.* needs scope members:read; "
        "app.updated needs scope apps:read"
    }
    assert not Application.objects.exists()
    viewer = api().post("/api/v1/apps/", {**body, "scopes": [], "role": "viewer", "webhook_events": ["apikey.*"]})
    assert viewer.status_code == 400
    assert viewer.json()["fields"]["webhook_events"] == (
        "the application may not read these events: apikey.* needs role admin or above (the role is 'viewer')"
    )
    accepted = api().post("/api/v1/apps/", {**body, "webhook_events": ["*", "execution.completed"]})
    assert accepted.status_code == 201, accepted.content
    app_id = accepted.json()["id"]
    # Changing the subscription, or narrowing the scopes under it, is held to the same rule.
    changed = api().patch(f"/api/v1/apps/{app_id}/", {"webhook_events": ["member.removed"]})
    assert changed.status_code == 400 and "member.removed needs scope members:read" in changed.json()["fields"]["webhook_events"]
    wide = api().post("/api/v1/apps/", {**body, "scopes": ["executions:read", "members:read"], "webhook_events": ["member.*"]})
    assert wide.status_code == 201
    narrowed = api().patch(f"/api/v1/apps/{wide.json()['id']}/", {"scopes": ["executions:read"]})
    assert narrowed.status_code == 400 and "webhook_events" in narrowed.json()["fields"]
    assert Application.objects.get(id=wide.json()["id"]).scopes == ["executions:read", "members:read"]
    assert Application.objects.get(id=app_id).webhook_events == ["*", "execution.completed"]
