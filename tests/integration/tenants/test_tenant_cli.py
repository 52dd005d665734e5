"""`nexus tenant …` in-process: JSON documents, people's output, errors on stderr with the documented exit codes."""

import json

import pytest

from apps.tenants.models import Tenant
from tests.integration.tenants.conftest import schema_present

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("nexus_world")]


def test_create_show_list_suspend_resume_delete(nexus):
    code, out, err = nexus(
        "tenant",
        "create",
        "umbrella",
        "--name=Umbrella Corp",
        "--plan=enterprise",
        "--quota-workflows=10",
        "--quota-executions",
        "1000",
        "--isolation=standard",
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["slug"] == "umbrella" and created["name"] == "Umbrella Corp" and created["plan"] == "enterprise"
    assert created["quotas"] == {"workflows": 10, "executions": 1000, "mail_per_day": None} and created["isolation"] == "standard"
    assert created["active"] is True and schema_present("t_umbrella")

    code, out, _ = nexus("tenant", "show", "umbrella", "--json")
    assert code == 0 and json.loads(out) == created

    code, out, _ = nexus("tenant", "list", "--json")
    listed = {t["slug"]: t for t in json.loads(out)["tenants"]}
    assert listed["umbrella"] == created and "template" not in listed and "public" not in listed

    code, out, _ = nexus("--json", "tenant", "suspend", "umbrella")
    assert code == 0 and json.loads(out)["active"] is False
    code, out, _ = nexus("tenant", "resume", "umbrella", "--json")
    assert code == 0 and json.loads(out)["active"] is True

    code, out, _ = nexus("tenant", "delete", "umbrella", "--confirm=umbrella", "--json")
    assert code == 0 and json.loads(out) == {"deleted": "umbrella"}
    assert not schema_present("t_umbrella") and not Tenant.objects.filter(slug="umbrella").exists()


def test_people_get_tables_and_panels(nexus):
    nexus("tenant", "create", "wayne", "--quota-workflows=5")
    code, out, _ = nexus("tenant", "show", "wayne")
    assert code == 0 and "tenant wayne" in out and "unlimited" in out and "strict" in out and "{" not in out
    code, out, _ = nexus("tenant", "list")
    assert code == 0 and "wayne" in out and "strict" in out and "{" not in out


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["tenant", "create", "Bad Slug"], 2, "invalid tenant slug"),
        (["tenant", "create", "newco", "--quota-workflows=-3"], 2, "quota_workflows"),
        (["tenant", "create", "acme"], 5, "already exists"),
        (["tenant", "show", "nobody"], 3, "does not exist"),
        (["tenant", "show", "template"], 3, "does not exist"),
        (["tenant", "suspend", "nobody"], 3, "does not exist"),
        (["tenant", "delete", "globex"], 2, "confirm"),
        (["tenant", "delete", "globex", "--confirm=acme"], 2, "confirm"),
    ],
)
def test_errors_go_to_stderr_with_exit_codes_and_change_nothing(nexus, args, exit_code, message):
    tenants = sorted(Tenant.objects.values_list("slug", "is_active"))
    code, out, err = nexus(*args)
    assert code == exit_code, (out, err)
    assert message in err and out == ""
    assert sorted(Tenant.objects.values_list("slug", "is_active")) == tenants
    assert schema_present("t_globex") and not schema_present("t_newco")


def test_errors_as_json_with_json(nexus):
    code, out, err = nexus("tenant", "delete", "globex", "--json")
    assert code == 2 and out == ""
    assert json.loads(err)["error"]["code"] == "confirmation_required"


def test_a_user_who_is_not_a_platform_admin_is_refused(nexus, nexus_world):
    from apps.accounts.services import membership_set, user_create

    owner = user_create(username="olivia", password="a-long-password-1")
    membership_set(user=owner, tenant=nexus_world["tenants"]["acme"], role="owner")
    before = sorted(Tenant.objects.values_list("slug", "is_active"))
    for args in (
        ["tenant", "list"],
        ["tenant", "create", "olivias"],
        ["tenant", "suspend", "globex"],
        ["tenant", "delete", "globex", "--confirm=globex"],
    ):
        code, out, err = nexus("--tenant=acme", "--as=olivia", *args)
        assert code == 4 and "only platform admins" in err and out == "", args
    assert sorted(Tenant.objects.values_list("slug", "is_active")) == before and schema_present("t_globex")
    # her own tenant she may see
    code, out, _ = nexus("--tenant=acme", "--as=olivia", "tenant", "show", "acme", "--json")
    assert code == 0 and json.loads(out)["slug"] == "acme"
