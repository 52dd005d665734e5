"""`nexus app …`: register (secrets once), list, show, update, rotate, revoke; errors on stderr with exit codes."""

import hashlib
import json

import pytest

from apps.accounts.models import ApiKey
from apps.integrations.models import Application

pytestmark = pytest.mark.django_db


def _json(nexus, *args):
    code, out, err = nexus("--tenant=acme", "app", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_the_application_lifecycle_on_the_cli(nexus, client, nexus_world):
    # register: the secrets, once
    app = _json(
        nexus,
        "register",
        "--name=crm",
        "--webhook-url=https://1.1.1.1/hooks",
        "--events=execution.*, session.created",
        "--scopes=workflows:read,executions:run,executions:read,sessions:read",
        "--role=developer",
        "--rate-limit=120",
    )
    assert app["id"].startswith("app_") and app["tenant"] == "acme" and app["role"] == "developer"
    assert app["scopes"] == ["executions:read", "executions:run", "sessions:read", "workflows:read"]
    assert app["webhook_events"] == ["execution.*", "session.created"]
    assert app["rate_limit_per_minute"] == 120 and app["created_by"].startswith("cli:")
    assert app["api_key"].startswith("nxk_") and app["client_secret"] and app["webhook_secret"].startswith("whsec_")
    assert ApiKey.objects.get(id=app["api_key_id"]).key_hash == hashlib.sha256(app["api_key"].encode()).hexdigest()
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {app['api_key']}").status_code == 200

    # list and show: never a secret
    listed = _json(nexus, "list")
    assert [a["id"] for a in listed["results"]] == [app["id"]] and "api_key" not in listed["results"][0]
    shown = _json(nexus, "show", app["id"])
    assert shown["client_id"] == app["client_id"] and "client_secret" not in shown

    # update: only what is given
    updated = _json(nexus, "update", app["id"], "--name=crm v2", "--rate-limit=default", "--scopes=")
    assert (updated["name"], updated["rate_limit_per_minute"], updated["scopes"]) == ("crm v2", None, [])
    assert updated["webhook_url"] == "https://1.1.1.1/hooks"

    # rotate one credential
    rotated = _json(nexus, "rotate", app["id"], "--credentials=api_key")
    assert rotated["api_key"] != app["api_key"] and "client_secret" not in rotated
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {app['api_key']}").status_code == 401

    # revoke
    revoked = _json(nexus, "revoke", app["id"])
    assert revoked["revoked_at"] is not None
    assert client.get("/api/v1/workflows/", HTTP_AUTHORIZATION=f"Bearer {rotated['api_key']}").status_code == 401


def test_the_register_panel_tells_a_person_to_store_the_secrets(nexus):
    code, out, err = nexus("--tenant=acme", "app", "register", "--name=panel")
    assert code == 0, err
    app = Application.objects.get(name="panel")
    assert app.id in out and "nxk_" in out and "not shown again" in out


@pytest.mark.parametrize(
    ("args", "code", "field"),
    [
        (["register", "--name=bad", "--scopes=root"], 2, "scopes"),
        (["register", "--name=bad", "--rate-limit=lots"], 2, "rate_limit_per_minute"),
        (["register", "--name=bad", "--webhook-url=gopher://1.1.1.1/"], 2, "webhook_url"),
        (["register", "--name=bad", "--role=god"], 2, "role"),
        (["register", "--name=b\x00d"], 2, "name"),
        (["show", "app_00000000000000000000000000"], 3, None),
        (["rotate", "app_00000000000000000000000000", "--credentials=password"], 2, "credentials"),
    ],
)
def test_errors_go_to_stderr_with_an_exit_code(nexus, args, code, field):
    exit_code, out, err = nexus("--tenant=acme", "app", *args, "--json")
    assert exit_code == code and out == ""
    error = json.loads(err)["error"]
    if field is not None:
        assert field in error["fields"], error
    assert not Application.objects.filter(name="bad").exists()


def test_another_tenants_application_is_not_found(nexus):
    app = _json(nexus, "register", "--name=acme's")
    code, out, err = nexus("--tenant=globex", "app", "revoke", app["id"])
    assert code == 3 and out == "" and "does not exist" in err
    assert Application.objects.get(id=app["id"]).revoked_at is None
