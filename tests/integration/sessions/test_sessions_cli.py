"""`nexus session …` and NEXUS_SESSION: the CLI binds its runs and events to a session."""

import json

import pytest
from django.db import connection

from apps.events.models import Event
from apps.runs.models import Execution

pytestmark = pytest.mark.django_db


def test_session_create_info_and_history(nexus, monkeypatch, nexus_world):
    code, out, err = nexus("--tenant", "acme", "session", "create", "--user", "u9", "--metadata", '{"k": 1}', "--json")
    assert code == 0, err
    session = json.loads(out)
    assert session["id"].startswith("ses_") and session["user"] == "u9" and session["metadata"] == {"k": 1}
    monkeypatch.setenv("NEXUS_SESSION", session["id"])
    code, out, err = nexus("--tenant", "acme", "session", "info", "--json")
    assert code == 0, err
    assert json.loads(out)["id"] == session["id"]
    assert nexus("--tenant", "acme", "create", "workflow", "cli-hello", "--template=basic", "--json")[0] == 0
    assert nexus("--tenant", "acme", "deploy", "cli-hello", "--json")[0] == 0
    code, out, err = nexus("--tenant", "acme", "run", "cli-hello", "--input", '{"name": "S"}', "--json")
    assert code == 0, err
    code, out, err = nexus("--tenant", "acme", "session", "history", "--json")
    assert code == 0, err
    history = json.loads(out)
    assert history["session"] == session["id"] and history["count"] == 1
    [run] = history["executions"]
    assert run["channel"] == "cli" and run["session"] == session["id"] and run["workflow"] == "cli-hello"
    connection.set_tenant(nexus_world["tenants"]["acme"])
    events = list(Event.objects.filter(session_id=session["id"]).values_list("type", "source"))
    assert events == [
        ("session.created", "cli"),
        ("workflow.created", "cli"),
        ("workflow.deployed", "cli"),
        ("execution.completed", "cli"),
    ]


def test_info_without_a_session_is_a_clear_error(nexus, monkeypatch, nexus_world):
    monkeypatch.delenv("NEXUS_SESSION", raising=False)
    code, out, err = nexus("--tenant", "acme", "session", "info")
    assert code == 2 and out == ""
    assert "NEXUS_SESSION" in err and "session_required" in err


def test_an_unknown_nexus_session_refuses_the_run(nexus, monkeypatch, nexus_world):
    assert nexus("--tenant", "acme", "create", "workflow", "cli-hello2", "--template=basic", "--json")[0] == 0
    monkeypatch.setenv("NEXUS_SESSION", "ses_00000000000000000000000000")
    code, out, err = nexus("--tenant", "acme", "test", "cli-hello2", "--input", '{"name": "S"}')
    assert code == 2 and "session_not_found" in err
    connection.set_tenant(nexus_world["tenants"]["acme"])
    assert Execution.objects.filter(workflow_slug="cli-hello2").count() == 0
