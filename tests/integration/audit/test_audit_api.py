"""GET /api/v1/audit/ and `nexus audit list`: who sees which rows, and the filters."""

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.integration.audit.conftest import only

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(api, nexus_world):
    """A workflow created in each tenant, and deleted again in acme."""
    api("acme").post("/api/v1/workflows/", {"slug": "acme-flow", "template": "basic"})
    api("acme").delete("/api/v1/workflows/acme-flow/")
    api("globex").post("/api/v1/workflows/", {"slug": "globex-flow", "template": "basic"})
    return nexus_world["tenants"]


@pytest.mark.parametrize("role", ["viewer", "operator", "developer"])
def test_roles_below_admin_are_refused_and_that_is_recorded(api, history, audit_rows, role):
    response = api("acme", role).get("/api/v1/audit/")

    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    only(audit_rows(action="access.denied"), target="audit.read", outcome="denied", tenant_id=history["acme"].pk)


def test_a_tenant_admin_sees_only_their_tenant(api, history, audit_rows):
    response = api("acme", "owner").get("/api/v1/audit/", limit=500)

    assert response.status_code == 200
    results = response.json()["results"]
    assert results and {r["tenant_id"] for r in results} == {history["acme"].pk} and {r["tenant"] for r in results} == {"acme"}
    assert not any(r["target"] and "globex" in json.dumps(r) for r in results)
    assert [r["action"] for r in results[:2]] == ["workflow.deleted", "workflow.created"]  # newest first
    assert [r["seq"] for r in results] == sorted((r["seq"] for r in results), reverse=True)
    assert results[0]["hash"] is not None  # sealed before listing
    globex = api("globex", "owner").get("/api/v1/audit/", action="workflow.created").json()["results"]
    assert [r["details"]["slug"] for r in globex] == ["globex-flow"]


def test_another_tenants_rows_are_never_reachable(api, history, audit_rows):
    acme_owner = api("acme", "owner")
    globex_row = api("globex", "owner").get("/api/v1/audit/", limit=1).json()["results"][0]

    assert acme_owner.get("/api/v1/audit/", tenant="globex").status_code == 404
    assert acme_owner.get("/api/v1/audit/", since=globex_row["id"]).status_code == 404  # not a cursor for acme
    assert globex_row["id"] not in json.dumps(acme_owner.get("/api/v1/audit/", limit=500).json())


def test_a_platform_admin_sees_every_tenant_or_one(admin_api, history):
    everything = admin_api.get("/api/v1/audit/", limit=500).json()["results"]
    assert {history["acme"].pk, history["globex"].pk} <= {r["tenant_id"] for r in everything}

    globex = admin_api.get("/api/v1/audit/", tenant="globex", limit=500).json()["results"]
    assert globex and {r["tenant"] for r in globex} == {"globex"}


def test_filters_action_actor_since_and_limit(api, history, key_actor):
    owner = api("acme", "owner")

    created = owner.get("/api/v1/audit/", action="workflow.created").json()["results"]
    assert [(r["action"], r["details"]["slug"]) for r in created] == [("workflow.created", "acme-flow")]
    by_entity = owner.get("/api/v1/audit/", action="workflow.*").json()["results"]
    assert [r["action"] for r in by_entity] == ["workflow.deleted", "workflow.created"]
    assert {r["actor"] for r in owner.get("/api/v1/audit/", actor=key_actor("acme", "owner")).json()["results"]} == {
        key_actor("acme", "owner")
    }
    assert owner.get("/api/v1/audit/", actor="user:nobody").json() == {"count": 0, "results": []}

    after = owner.get("/api/v1/audit/", since=created[0]["id"]).json()["results"]  # a cursor: after it, oldest first
    assert [r["action"] for r in after][:1] == ["workflow.deleted"] and all(r["seq"] > created[0]["seq"] for r in after)
    assert owner.get("/api/v1/audit/", since=created[0]["ts"], action="workflow.*").json()["count"] == 2
    assert owner.get("/api/v1/audit/", since="2999-01-01").json()["count"] == 0
    assert len(owner.get("/api/v1/audit/", limit=1).json()["results"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"since": "2026-13-01"}, "since"),
    ],
)
def test_bad_filters_are_named(api, history, params, field):
    response = api("acme", "owner").get("/api/v1/audit/", **params)
    assert response.status_code == 400 and field in response.json()["fields"]


def test_an_unknown_cursor_is_not_found(api, history):
    response = api("acme", "owner").get("/api/v1/audit/", since="aud_" + "0" * 26)
    assert response.status_code == 404 and response.json()["fields"] == {"since": f"no audit event 'aud_{'0' * 26}'"}


def test_the_list_does_not_query_per_row(api, history):
    owner = api("acme", "owner")
    owner.get("/api/v1/audit/", limit=1)  # seal what is there
    with CaptureQueriesContext(connection) as few:
        assert len(owner.get("/api/v1/audit/", limit=1).json()["results"]) == 1
    with CaptureQueriesContext(connection) as many:
        assert len(owner.get("/api/v1/audit/", limit=50).json()["results"]) > 1
    assert len(many.captured_queries) == len(few.captured_queries)


def test_nexus_audit_list_on_the_cli(nexus, history, audit_rows, make_user):
    code, out, err = nexus("--tenant=acme", "audit", "list", "--action=workflow.*", "--json")
    assert code == 0, err
    events = json.loads(out)["events"]
    assert [(e["action"], e["tenant"]) for e in events[:3]] == [
        ("workflow.created", "globex"),
        ("workflow.deleted", "acme"),
        ("workflow.created", "acme"),
    ]  # the operator at the machine is a platform admin: every tenant

    code, out, _ = nexus("--tenant=acme", "audit", "list", "--only-tenant=globex", "--limit=1", "--json")
    assert [e["tenant"] for e in json.loads(out)["events"]] == ["globex"]
    code, out, _ = nexus("--tenant=acme", "audit", "list", f"--since={events[2]['id']}", "--action=workflow.*", "--json")
    assert [e["id"] for e in json.loads(out)["events"]] == [events[1]["id"], events[0]["id"]]

    make_user("amy", acme="admin")
    code, out, _ = nexus("--tenant=acme", "--as=amy", "audit", "list", "--json")
    assert code == 0 and {e["tenant"] for e in json.loads(out)["events"]} == {"acme"}
    make_user("val", acme="viewer")
    assert nexus("--tenant=acme", "--as=val", "audit", "list")[0] == 4

    code, out, _ = nexus("--tenant=acme", "audit", "list", "--limit=3")
    assert code == 0 and "audit log" in out and "{" not in out
