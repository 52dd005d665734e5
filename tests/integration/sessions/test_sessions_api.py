"""Sessions over the REST API: create, show, update, expiry, isolation, run binding, and the events they publish."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.events.models import Event
from apps.nexus_sessions.models import Session
from apps.runs.models import Execution

pytestmark = pytest.mark.django_db


def _in(tenant, fn):
    connection.set_tenant(tenant)
    try:
        return fn()
    finally:
        connection.set_schema_to_public()


def test_create_show_and_update_a_session(api, nexus_world, listen, django_capture_on_commit_callbacks):
    owner = api()
    with django_capture_on_commit_callbacks(execute=True):
        created = owner.post("/api/v1/sessions/", {"user": "end-user-7", "metadata": {"plan": "pro"}})
    assert created.status_code == 201
    body = created.json()
    assert body["id"].startswith("ses_") and body["user"] == "end-user-7" and body["metadata"] == {"plan": "pro"}
    assert body["created_by"].startswith("apikey:key_")
    receive = listen("acme", session=body["id"])
    assert api(role="viewer").get(f"/api/v1/sessions/{body['id']}/").json() == body
    with django_capture_on_commit_callbacks(execute=True):
        patched = owner.patch(f"/api/v1/sessions/{body['id']}/", {"metadata": {"plan": "team"}})
    assert patched.status_code == 200 and patched.json()["metadata"] == {"plan": "team"}
    [event] = receive()
    assert event["type"] == "session.updated" and event["source"] == "api" and event["tenant"] == "acme"
    assert event["session"] == body["id"] and event["data"]["metadata"] == {"plan": "team"}
    assert event["id"].startswith("evt_") and set(event) == {"id", "type", "source", "tenant", "session", "ts", "data"}
    stored = _in(
        nexus_world["tenants"]["acme"], lambda: list(Event.objects.filter(session_id=body["id"]).values_list("type", "source"))
    )
    assert stored == [("session.created", "api"), ("session.updated", "api")]
    audited = AuditEvent.objects.filter(target=body["id"]).order_by("seq")
    assert [(a.action, a.channel, a.outcome) for a in audited] == [
        ("session.created", "api", "success"),
        ("session.updated", "api", "success"),
    ]
    assert audited[0].tenant_id == nexus_world["tenants"]["acme"].pk and audited[0].actor == body["created_by"]


def test_a_viewer_cannot_create_and_bad_input_is_refused(api, nexus_world):
    denied = api(role="viewer").post("/api/v1/sessions/", {"user": "u"})
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    bad = api().post("/api/v1/sessions/", {"metadata": [1, 2]})
    assert bad.status_code == 400 and "metadata" in bad.json()["fields"]
    assert _in(nexus_world["tenants"]["acme"], lambda: Session.objects.count()) == 0


def test_another_tenants_session_does_not_exist(api, deployed):
    session_id = api().post("/api/v1/sessions/", {}).json()["id"]
    other = api(tenant="globex")
    for path in (f"/api/v1/sessions/{session_id}/", f"/api/v1/sessions/{session_id}/executions/"):
        response = other.get(path)
        assert response.status_code == 404 and response.json()["code"] == "session_not_found"
    assert other.patch(f"/api/v1/sessions/{session_id}/", {"metadata": {}}).status_code == 404


def test_runs_bind_to_the_session_and_are_listed_with_their_channel(
    api, deployed, nexus_world, listen, django_capture_on_commit_callbacks
):
    owner = api()
    session_id = owner.post("/api/v1/sessions/", {"user": "u1"}).json()["id"]
    receive = listen("acme", session=session_id)
    with django_capture_on_commit_callbacks(execute=True):
        first = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "A"}, "session": session_id}).json()
        unbound = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "B"}}).json()
        second = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "C"}, "session": session_id}).json()
    listed = api(role="viewer").get(f"/api/v1/sessions/{session_id}/executions/").json()
    assert listed["count"] == 2
    assert [(r["id"], r["channel"], r["session"]) for r in listed["results"]] == [
        (second["execution_id"], "api", session_id),
        (first["execution_id"], "api", session_id),
    ]
    events = receive()
    assert [(e["type"], e["source"], e["data"]["execution_id"]) for e in events] == [
        ("execution.completed", "api", first["execution_id"]),
        ("execution.completed", "api", second["execution_id"]),
    ]
    assert events[0]["data"]["outputs"] == {"message": "Hello, A!"}
    # A run with no session, while nobody subscribes to the tenant, publishes nothing.
    assert not _in(
        nexus_world["tenants"]["acme"], lambda: Event.objects.filter(data__execution_id=unbound["execution_id"]).exists()
    )


def test_runs_without_a_session_publish_while_the_tenant_has_subscribers(api, deployed, nexus_world):
    from apps.events.presence import subscribers_mark

    subscribers_mark("acme")
    run = api().post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "D"}}).json()
    stored = _in(
        nexus_world["tenants"]["acme"],
        lambda: list(Event.objects.filter(data__execution_id=run["execution_id"]).values_list("type", "session_id")),
    )
    assert stored == [("execution.completed", None)]


def test_an_expired_session_is_refused_and_a_used_one_is_kept_alive(api, deployed, nexus_world, settings):
    owner = api()
    session_id = owner.post("/api/v1/sessions/", {}).json()["id"]
    acme = nexus_world["tenants"]["acme"]
    old = timezone.now() - timedelta(minutes=settings.NEXUS_SESSION_IDLE_MINUTES - 1)
    _in(acme, lambda: Session.objects.filter(id=session_id).update(last_seen_at=old))
    assert (
        owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}, "session": session_id}).status_code == 200
    )
    assert _in(acme, lambda: Session.objects.get(id=session_id).last_seen_at) > old  # bumped by use
    from apps.nexus_sessions.services import bind_cache

    bind_cache.clear()
    expired = timezone.now() - timedelta(minutes=settings.NEXUS_SESSION_IDLE_MINUTES + 1)
    _in(acme, lambda: Session.objects.filter(id=session_id).update(last_seen_at=expired))
    runs_before = _in(acme, lambda: Execution.objects.count())
    refused = owner.post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}, "session": session_id})
    assert refused.status_code == 400 and refused.json()["code"] == "session_expired"
    shown = owner.get(f"/api/v1/sessions/{session_id}/")
    assert shown.status_code == 404 and shown.json()["code"] == "session_expired"
    assert _in(acme, lambda: Execution.objects.count()) == runs_before


def test_another_tenants_session_cannot_bind_a_run(api, deployed, nexus_world):
    globex_session = api(tenant="globex").post("/api/v1/sessions/", {}).json()["id"]
    refused = api().post("/api/v1/workflows/hello-world/execute/", {"inputs": {"name": "x"}, "session": globex_session})
    assert refused.status_code == 400 and refused.json()["code"] == "session_not_found"
    assert _in(nexus_world["tenants"]["acme"], lambda: Execution.objects.filter(session_id=globex_session).count()) == 0


def test_workflow_actions_publish_events(api, nexus_world, listen, django_capture_on_commit_callbacks):
    receive = listen("acme")
    owner = api()
    with django_capture_on_commit_callbacks(execute=True):
        owner.post("/api/v1/workflows/", {"slug": "evented", "template": "basic"})
        owner.patch("/api/v1/workflows/evented/", {"name": "Evented"})
        owner.post("/api/v1/workflows/evented/deploy/", {})
        owner.delete("/api/v1/workflows/evented/")
    events = [e for e in receive() if e["data"].get("slug") == "evented"]
    assert [(e["type"], e["source"], e["session"]) for e in events] == [
        ("workflow.created", "api", None),
        ("workflow.updated", "api", None),
        ("workflow.deployed", "api", None),
        ("workflow.deleted", "api", None),
    ]
    assert events[2]["data"]["environment"] == "production" and events[2]["data"]["version"] == 1
