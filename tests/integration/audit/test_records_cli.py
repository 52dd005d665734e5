"""Every mutating `nexus` verb, and every run made there, leaves exactly one audit row with channel `cli`."""

import getpass
import json

import pytest

from tests.integration.audit.conftest import only

pytestmark = pytest.mark.django_db

OPERATOR = f"cli:{getpass.getuser()}"


def test_workflow_verbs_and_a_run_on_the_cli(nexus, audit_rows, nexus_world):
    acme = nexus_world["tenants"]["acme"]
    common = {"tenant_id": acme.pk, "actor": OPERATOR, "actor_type": "system", "channel": "cli", "outcome": "success", "ip": None}

    code, out, err = nexus("--tenant=acme", "create", "workflow", "hello-world", "--template=basic", "--json")
    assert code == 0, err
    workflow_id = json.loads(out)["workflow_id"]
    created = only(audit_rows(), action="workflow.created", target=workflow_id, **common)
    assert len(created.request_id) == 24  # each verb gets a request id of its own

    mark = created.seq
    assert nexus("--tenant=acme", "workflow", "update", "hello-world", "--name=Hello")[0] == 0
    assert nexus("--tenant=acme", "deploy", "hello-world")[0] == 0
    code, out, _ = nexus("--tenant=acme", "run", "hello-world", '--input={"name": "Cli"}', "--json")
    run_id = json.loads(out)["execution_id"]
    assert nexus("--tenant=acme", "workflow", "delete", "hello-world")[0] == 0

    rows = audit_rows(after=mark)
    assert [(r.action, r.target) for r in rows] == [
        ("workflow.updated", workflow_id),
        ("workflow.deployed", workflow_id),
        ("execution.completed", run_id),
        ("workflow.deleted", workflow_id),
    ]
    assert all({name: getattr(r, name) for name in common} == common for r in rows)
    assert len({r.request_id for r in rows}) == 4


def test_a_test_run_on_the_cli_is_recorded_too(nexus, audit_rows):
    nexus("--tenant=acme", "create", "workflow", "hello-world", "--template=basic")
    mark = audit_rows()[-1].seq

    code, out, _ = nexus("--tenant=acme", "test", "hello-world", '--input={"name": "T"}', "--json")

    assert code == 0 and json.loads(out) == {"message": "Hello, T!"}
    row = only(audit_rows(after=mark), action="execution.completed", channel="cli")
    assert row.details["environment"] == ""  # a test run of the latest version, deployed or not


def test_a_user_acting_with_as_and_denied_leaves_access_denied(nexus, audit_rows, make_user, nexus_world):
    make_user("vic", acme="viewer")
    nexus("--tenant=acme", "create", "workflow", "hello-world", "--template=basic")
    mark = audit_rows()[-1].seq

    code, _, err = nexus("--tenant=acme", "--as=vic", "workflow", "delete", "hello-world")

    assert code == 4 and "may not workflow delete" in err
    only(
        audit_rows(after=mark),
        action="access.denied",
        actor="user:vic",
        actor_type="user",
        channel="cli",
        target="workflow.delete",
        outcome="denied",
        tenant_id=nexus_world["tenants"]["acme"].pk,
    )


def test_api_key_tenant_and_member_verbs_on_the_cli(nexus, audit_rows, make_user, nexus_world):
    code, out, err = nexus("--tenant=acme", "apikey", "create", "--role=viewer", "--json")
    assert code == 0, err
    key_id = json.loads(out)["id"]
    assert nexus("--tenant=acme", "apikey", "revoke", key_id)[0] == 0
    assert nexus("tenant", "create", "hooli")[0] == 0
    assert nexus("tenant", "suspend", "hooli")[0] == 0
    assert nexus("tenant", "resume", "hooli")[0] == 0
    assert nexus("tenant", "delete", "hooli", "--confirm=hooli")[0] == 0
    make_user("una")
    assert nexus("--tenant=acme", "member", "add", "una", "--role=developer")[0] == 0
    assert nexus("--tenant=acme", "member", "add", "una", "--role=admin")[0] == 0
    assert nexus("--tenant=acme", "member", "remove", "una")[0] == 0

    rows = audit_rows()
    assert [(r.action, r.target) for r in rows] == [
        ("apikey.created", key_id),
        ("apikey.revoked", key_id),
        ("tenant.created", "tenant:hooli"),
        ("tenant.suspended", "tenant:hooli"),
        ("tenant.resumed", "tenant:hooli"),
        ("tenant.deleted", "tenant:hooli"),
        ("member.added", "user:una"),
        ("member.updated", "user:una"),
        ("member.removed", "user:una"),
    ]
    assert {(r.actor, r.channel, r.outcome) for r in rows} == {(OPERATOR, "cli", "success")}
    acme = nexus_world["tenants"]["acme"].pk
    assert [r.tenant_id == acme for r in rows] == [True, True, False, False, False, False, True, True, True]
    assert rows[7].details == {"role": "admin", "previous_role": "developer"}


def test_user_create_and_datasets_on_the_cli(nexus, audit_rows, tmp_path):
    from apps.audit.recorder import public_tenant_id

    code, _, err = nexus("user", "create", "wendy", "--json")
    assert code == 0, err
    data = tmp_path / "sales.csv"
    data.write_text("region,amount\neu,3\nus,4\n")
    code, out, err = nexus("--tenant=acme", "dataset", "upload", "sales", f"--file={data}", "--json")
    assert code == 0, err
    assert nexus("--tenant=acme", "dataset", "delete", "sales")[0] == 0

    user, upload, delete = audit_rows()
    assert (user.action, user.target, user.tenant_id) == ("user.created", "user:wendy", public_tenant_id())
    assert (upload.action, upload.target, upload.details["rows"]) == ("dataset.uploaded", json.loads(out)["id"], 2)
    assert (delete.action, delete.channel) == ("dataset.deleted", "cli")


def test_a_member_manager_above_their_rank_is_denied(make_user, audit_rows, nexus_world):
    from apps.accounts.services import member_add
    from apps.core.errors import PermissionDenied
    from apps.core.principal import Principal

    acme = nexus_world["tenants"]["acme"]
    make_user("ozzy", acme="owner")
    admin = Principal(kind="user", actor="user:adam", tenant_id=acme.pk, tenant_slug="acme", role="admin")

    with pytest.raises(PermissionDenied):
        member_add(principal=admin, tenant=acme, username="ozzy", role="viewer")

    only(audit_rows(), action="access.denied", target="member.write", actor="user:adam", outcome="denied", tenant_id=acme.pk)
